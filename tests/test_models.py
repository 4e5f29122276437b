"""The one contract every registered model meets, read from its spec: scoring, padding, weights,
determinism, settings, bundles and export; plus each training regime's own contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqrec.bundle import load_bundle, save_bundle
from seqrec.config import TrainConfig
from seqrec.errors import ConfigError
from seqrec.evaluation.protocols import PROTOCOLS, candidate_mask
from seqrec.export import export
from seqrec.losses import softmax_loss
from seqrec.models.registry import MODELS, PRESETS, build_model, model_config
from seqrec.recommend import recommend
from seqrec.settings import resolve_run_config
from seqrec.training import REGIMES
from seqrec.training.regimes import Batch, make_regime
from tests.model_fixtures import NUM_ITEMS, NUM_USERS, B, batch, history, make, small_bundle


def by_regime(*regimes: str) -> list[str]:
    return [name for name in sorted(MODELS) if MODELS[name].regime in regimes]


def test_every_spec_is_complete_and_every_preset_has_one_name():
    for name, spec in MODELS.items():
        assert spec.name == name and spec.regime in REGIMES and spec.summary
        assert history(name) >= 0
    assert len(PRESETS) == sum(len(spec.presets) for spec in MODELS.values())


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
def test_candidates_shared_by_every_row_score_as_if_given_to_each(name):
    model, (users, seqs) = make(name), batch(name)
    shared = torch.tensor([3, 1, 7, 3])
    with torch.no_grad():
        torch.testing.assert_close(model.score(users, seqs, shared), model.score(users, seqs, shared.expand(B, -1)))
        if MODELS[name].regime in ("positions", "masked"):
            L = seqs.size(1)
            torch.testing.assert_close(model.score_positions(users, seqs, shared),
                                       model.score_positions(users, seqs, shared.expand(B, L, -1)))


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
    bad = [{"no_such_setting": 1}] + ([{"L": 0}] if "L" in model_config(name, {}).__dataclass_fields__ else [])
    for params in bad:
        with pytest.raises(ConfigError):
            model_config(name, params)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bundle_round_trip_recommends_the_same_items_for_every_model(name, tmp_path):
    made = small_bundle(name)
    loaded = load_bundle(save_bundle(made, tmp_path / "bundle"))
    assert loaded.model_name == name and history(name) == loaded.L
    users = made.user_map.external.tolist()
    assert [r.items for r in recommend(loaded, users, k=5)] == [r.items for r in recommend(made, users, k=5)]
    np.testing.assert_array_equal(loaded.histories.last, made.histories.last)
    np.testing.assert_array_equal(loaded.histories.seen.items, made.histories.seen.items)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", sorted(MODELS))
def test_torchscript_export_gives_every_models_scores(name, tmp_path):  # ONNX: tests/test_export.py
    bundle = small_bundle(name)
    scorer = torch.jit.load(str(export(bundle, tmp_path / "scorer.pt")))
    users, seqs = batch(name)
    with torch.no_grad():
        torch.testing.assert_close(scorer(users, seqs), bundle.model.score_all(users, seqs))


@pytest.mark.parametrize("name", by_regime("positions"))
def test_positionwise_scores_end_with_the_ordinary_scores_and_never_look_ahead(name):
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


@pytest.mark.parametrize("name", by_regime("masked"))
def test_masked_models_score_the_next_item_at_a_mask_after_the_history(name):
    model, (users, seqs) = make(name), batch(name)
    L = seqs.size(1)
    asked = torch.cat([seqs[:, 1:], torch.full((B, 1), NUM_ITEMS + 1)], 1)          # history, then the mask token
    items = torch.randint(1, NUM_ITEMS + 1, (B, L, 4), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        all_positions = model.score_all_positions(users, asked)
        torch.testing.assert_close(model.score_positions(users, asked, items), all_positions.gather(2, items))
        torch.testing.assert_close(all_positions[:, -1], model.score_all(users, seqs))
        where = torch.rand(B, L, generator=torch.Generator().manual_seed(5)) < 0.4
        torch.testing.assert_close(model.score_all_positions(users, asked, where), all_positions[where])
        # bidirectional: the last item changes what every real position sees
        changed = asked.clone()
        changed[:, -2] = changed[:, -2] % NUM_ITEMS + 1
        assert not torch.allclose(model.score_all_positions(users, changed)[0, 0], all_positions[0, 0])


@pytest.mark.parametrize("name", by_regime("masked"))
def test_the_masked_full_softmax_scoring_hidden_positions_only_is_the_loss_over_all_positions(name):
    model, (users, seqs) = make(name), batch(name)
    regime = make_regime("masked", TrainConfig(loss="softmax", mask_prob=0.4), NUM_ITEMS)
    scored, score_all_positions = [], model.score_all_positions

    def recording(*args: torch.Tensor) -> torch.Tensor:                                # keeps what the regime scores
        scored.append(score_all_positions(*args))
        return scored[-1]

    model.score_all_positions = recording
    with torch.no_grad():
        loss = regime.batch_loss(model, Batch(users, seqs, seqs, None), np.random.default_rng(3))
        hidden = torch.as_tensor(np.random.default_rng(3).random(tuple(seqs.shape)) < 0.4) & (seqs != 0)
        asked = seqs.masked_fill(hidden, NUM_ITEMS + 1)
        every = softmax_loss(score_all_positions(users, asked), (seqs * hidden).unsqueeze(2))
    assert hidden.any() and not hidden.all() and scored[0].shape == (hidden.sum(), NUM_ITEMS + 1)
    torch.testing.assert_close(loss, every)


def test_counting_models_count_what_they_are_shown():
    pop, markov = build_model("pop", {}, 2, 4), build_model("markov", {"L": 2}, 2, 4)
    users, inputs, targets = torch.tensor([1, 2]), torch.tensor([[0, 1], [2, 3]]), torch.tensor([[2], [4]])
    for model in (pop, markov):
        model.fit_counts(users, inputs, targets)
    assert pop.counts.tolist() == [0, 0, 1, 0, 1]
    # C in CSR form (sparse since it scales to 10^5 items): 1 -> 2, 2 -> 4, 3 -> 4 once each; padding input 0
    # counts nothing
    assert markov.row_starts.tolist() == [0, 0, 1, 2, 3, 3] and markov.transition_items.tolist() == [2, 4, 4]
    assert markov.transition_counts.tolist() == [1, 1, 1]
    # recency weights: the most recent input weighs L = 2, the one before it 1; backoff breaks ties
    scores = markov.score_all(torch.tensor([1]), torch.tensor([[3, 1]]))
    assert scores[0, 2] == 2 + 0.5 * 1 and scores[0, 4] == 1 + 0.5 * 1 and scores[0, 3] == 0


def test_every_preset_builds_and_paper_is_the_caser_papers_setting():
    for name in PRESETS:
        run = resolve_run_config(name)
        build_model(run.model, run.model_params, NUM_USERS, NUM_ITEMS)
    paper = resolve_run_config("paper")
    p = paper.model_params
    assert (paper.model, p.embedding_dim, p.L, p.num_h_filters, p.num_v_filters, p.dropout) == ("caser", 50, 5, 16,
                                                                                               4, 0.5)
    t = paper.train
    assert (t.loss, t.num_negatives, t.T, t.lr, t.weight_decay, t.batch_size, t.epochs) == ("bce", 3, 3, 1e-3, 1e-6,
                                                                                            512, 50)
    assert set(MODELS) <= {resolve_run_config(name).model for name in PRESETS}
