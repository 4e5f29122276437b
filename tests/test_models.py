"""The one contract every registered model meets, plus the optional training protocols' own contracts."""

from __future__ import annotations

import pytest
import torch

from seqrec.config import PRESETS, resolve_run_config
from seqrec.errors import ConfigError
from seqrec.evaluation.protocols import PROTOCOLS, candidate_mask
from seqrec.models import MODELS, CountingRecommender, PositionwiseRecommender, build_model, model_config

NUM_USERS, NUM_ITEMS, B = 6, 15, 5
SMALL = {"caser": {"embedding_dim": 8}, "sasrec": {"embedding_dim": 8, "L": 7, "num_heads": 2},
         "gru4rec": {"embedding_dim": 8, "L": 7}, "bprmf": {"embedding_dim": 8}}


def make(name: str, seed: int = 0) -> torch.nn.Module:
    """A small model of `name`, counted on a few random windows if it learns by counting."""
    torch.manual_seed(seed)
    model = build_model(name, SMALL.get(name, {}), NUM_USERS, NUM_ITEMS)
    if isinstance(model, CountingRecommender):
        g = torch.Generator().manual_seed(seed)
        L = model_config(name, SMALL.get(name, {})).L
        model.fit_counts(torch.randint(1, NUM_USERS + 1, (40,), generator=g),
                         torch.randint(0, NUM_ITEMS + 1, (40, L), generator=g),
                         torch.randint(1, NUM_ITEMS + 1, (40, 2), generator=g))
    return model.eval()


def batch(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Users (B,) with an unknown user 0, and left-padded sequences (B, L) with an empty one."""
    L = model_config(name, SMALL.get(name, {})).L
    g = torch.Generator().manual_seed(1)
    seqs = torch.randint(1, NUM_ITEMS + 1, (B, L), generator=g)
    seqs[1, : L // 2] = 0                                            # a short history
    seqs[2] = 0                                                      # no history at all
    return torch.tensor([1, 2, 3, 0, NUM_USERS]), seqs


@pytest.mark.parametrize("name", sorted(MODELS))
def test_score_agrees_with_score_all_and_shapes_hold(name):
    model, (users, seqs) = make(name), batch(name)
    items = torch.randint(1, NUM_ITEMS + 1, (B, 9), generator=torch.Generator().manual_seed(2))
    items[:, 0] = items[:, 1]                                        # a repeated candidate
    with torch.no_grad():
        all_scores, scores = model.score_all(users, seqs), model.score(users, seqs, items)
    assert all_scores.shape == (B, NUM_ITEMS + 1) and scores.shape == (B, 9)
    assert torch.isfinite(all_scores).all()
    torch.testing.assert_close(scores, all_scores.gather(1, items))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_padding_is_never_recommended_after_the_ranking_mask(name):
    model, (users, seqs) = make(name), batch(name)
    with torch.no_grad():
        scores = model.score_all(users, seqs)
    scores[:, 0] = scores.max() + 1                                  # even if a model liked padding most
    empty = torch.zeros(0, dtype=torch.long)
    mask = candidate_mask(PROTOCOLS["d2l-fixed"], empty, empty, B, NUM_USERS, NUM_ITEMS)
    top = scores.masked_fill(~mask, -torch.inf).topk(5, 1).indices
    assert (top != 0).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_saved_weights_restore_identical_scores(name):
    model, (users, seqs) = make(name, seed=0), batch(name)
    fresh = make(name, seed=1)
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh.score_all(users, seqs), model.score_all(users, seqs), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_same_seed_same_model_and_eval_is_deterministic(name):
    a, b, (users, seqs) = make(name, seed=3), make(name, seed=3), batch(name)
    with torch.no_grad():
        first = a.score_all(users, seqs)
        assert torch.equal(first, a.score_all(users, seqs)) and torch.equal(first, b.score_all(users, seqs))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bad_settings_are_config_errors(name):
    for bad in ({"L": 0}, {"no_such_setting": 1}):
        with pytest.raises(ConfigError):
            model_config(name, bad)


@pytest.mark.parametrize("name", [n for n in sorted(MODELS) if isinstance(make(n), PositionwiseRecommender)])
def test_positionwise_scores_end_with_the_ordinary_scores(name):
    model, (users, seqs) = make(name), batch(name)
    L = seqs.size(1)
    items = torch.randint(1, NUM_ITEMS + 1, (B, L, 4), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        per_position = model.score_positions(users, seqs, items)
        all_positions = model.score_all_positions(users, seqs)
        torch.testing.assert_close(per_position, all_positions.gather(2, items))
        torch.testing.assert_close(all_positions[:, -1], model.score_all(users, seqs))
        # position t sees only seqs[:, : t + 1]: changing the last item leaves earlier positions alone
        changed = seqs.clone()
        changed[:, -1] = changed[:, -1] % NUM_ITEMS + 1
        torch.testing.assert_close(model.score_all_positions(users, changed)[:, :-1], all_positions[:, :-1])


def test_counting_models_count_what_they_are_shown():
    pop, markov = build_model("pop", {}, 2, 4), build_model("markov", {"L": 2}, 2, 4)
    users, inputs, targets = torch.tensor([1, 2]), torch.tensor([[0, 1], [2, 3]]), torch.tensor([[2], [4]])
    for model in (pop, markov):
        model.fit_counts(users, inputs, targets)
    assert pop.counts.tolist() == [0, 0, 1, 0, 1]
    expected = torch.zeros(5, 5)
    expected[1, 2] = expected[2, 4] = expected[3, 4] = 1             # padding input 0 counts nothing
    torch.testing.assert_close(markov.transitions, expected)
    # recency weights: the most recent input weighs L = 2, the one before it 1; backoff breaks ties
    scores = markov.score_all(torch.tensor([1]), torch.tensor([[3, 1]]))
    assert scores[0, 2] == 2 + 0.5 * 1 and scores[0, 4] == 1 + 0.5 * 1 and scores[0, 3] == 0


def test_every_preset_builds_and_paper_is_the_caser_papers_setting():
    for name in PRESETS:
        run = resolve_run_config(name)
        build_model(run.model, run.model_params, NUM_USERS, NUM_ITEMS)
    paper = resolve_run_config("paper")
    assert (paper.model, dict(paper.model_params)) == ("caser", {"embedding_dim": 50, "L": 5, "num_h_filters": 16,
                                                                 "num_v_filters": 4, "dropout": 0.5})
    t = paper.train
    assert (t.loss, t.num_negatives, t.T, t.lr, t.weight_decay, t.batch_size, t.epochs) == ("bce", 3, 3, 1e-3, 1e-6,
                                                                                            512, 50)
    assert set(MODELS) <= {resolve_run_config(name).model for name in PRESETS}
