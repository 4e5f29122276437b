"""train.batch_order=by-length: batches of similar example sizes, each cut to its longest example, scored as uncut."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqrec.config import TrainConfig
from seqrec.data.sequences import Sequences
from seqrec.errors import ConfigError
from seqrec.models.registry import MODELS, model_config
from seqrec.settings import build_run_config
from seqrec.training.loop import SORTED_TOGETHER, by_length
from seqrec.training.regimes import DeviceExamples, make_regime
from tests.test_learning import CHANCE, SETTINGS, chain, run  # noqa: F401 (chain is a fixture)

NUM_ITEMS = 40
CUTTING = sorted(name for name, spec in MODELS.items() if spec.cuts_padding)


def ragged(num_users: int = 64, longest: int = 30, seed: int = 0) -> Sequences:
    """Random sequences of 2 to `longest` items."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, longest + 1, num_users)
    return Sequences(np.arange(num_users), np.r_[0, np.cumsum(lengths)], rng.integers(1, NUM_ITEMS + 1, lengths.sum()))


def test_by_length_keeps_every_example_and_groups_similar_sizes():
    rng = np.random.default_rng(0)
    sizes, order = rng.integers(1, 51, 10_000), rng.permutation(10_000)
    grouped = by_length(order, sizes, 64, np.random.default_rng(1))
    assert np.array_equal(np.sort(grouped), np.arange(10_000))
    spread = [np.ptp(sizes[grouped[i: i + 64]]) for i in range(0, 10_000, 64)]
    shuffled = [np.ptp(sizes[order[i: i + 64]]) for i in range(0, 10_000, 64)]
    assert np.mean(spread) < 0.1 * np.mean(shuffled)                  # measured: 0.8 against 48
    group = np.empty(10_000, np.int64)                                 # a batch never mixes sorting groups
    group[order] = np.arange(10_000) // (64 * SORTED_TOGETHER)
    assert all(len(set(group[grouped[i: i + 64]])) == 1 for i in range(0, 10_000, 64))


@pytest.mark.parametrize("name", CUTTING)
def test_cut_batches_score_their_real_positions_as_uncut(name):
    spec = MODELS[name]
    params = model_config(name, {"L": 50, "embedding_dim": 16, "num_blocks": 2, "num_heads": 2, "dropout": 0.3})
    torch.manual_seed(0)
    model = spec.build(params, 64, NUM_ITEMS).eval()
    examples = make_regime(spec.regime, TrainConfig(), NUM_ITEMS).examples(ragged(), spec.history(params))
    data, rows = DeviceExamples(examples, torch.device("cpu")), torch.arange(16)
    width = int(examples.sizes[:16].max())
    assert width < examples.width
    full, cut = data.batch(rows, None), data.batch(rows, None, width)
    real, kept = cut.inputs != 0, cut.inputs.size(1)
    assert torch.equal(full.inputs[:, -kept:], cut.inputs) and not full.inputs[:, :-kept].any()
    with torch.no_grad():
        scores = model.score_all_positions(full.users, full.inputs)[:, -kept:]
        torch.testing.assert_close(model.score_all_positions(cut.users, cut.inputs)[real], scores[real])


def test_cut_batches_keep_their_sampled_negatives():
    cfg = TrainConfig(loss="bce", num_negatives=3)
    params = model_config("sasrec", {"L": 50, "embedding_dim": 16, "dropout": 0.3})
    torch.manual_seed(0)
    model = MODELS["sasrec"].build(params, 64, NUM_ITEMS).eval()
    regime = make_regime("positions", cfg, NUM_ITEMS)
    examples = regime.examples(ragged(), 50)
    data, rows = DeviceExamples(examples, torch.device("cpu")), torch.arange(16)
    negatives = torch.randint(1, NUM_ITEMS + 1, (16, regime.negatives_per_example(examples)))
    width = int(examples.sizes[:16].max())
    with torch.no_grad():
        losses = [regime.batch_loss(model, data.batch(rows, negatives, w), np.random.default_rng(0))
                  for w in (None, width)]
    torch.testing.assert_close(*losses)


@pytest.mark.parametrize("name", CUTTING)
def test_models_learn_from_batches_ordered_by_length(chain, name):  # noqa: F811
    assert run(chain, name, batch_order="by-length") > 5 * CHANCE


def test_by_length_is_refused_for_a_model_that_reads_its_padding():
    raw = {"model": "gru4rec", "train": {"batch_order": "by-length"}}
    with pytest.raises(ConfigError, match="batch_order=by-length needs a model .*bert4rec, sasrec.*not gru4rec"):
        build_run_config(raw)


def test_supervised_positions_count_the_targets_a_batch_really_has():
    """by-length weighs a batch's mean loss by its supervised positions per example: they must be the real ones."""
    for name in CUTTING:
        spec = MODELS[name]
        params = model_config(name, {"L": 50})
        regime = make_regime(spec.regime, TrainConfig(mask_prob=0.3), NUM_ITEMS)
        examples = regime.examples(ragged(), spec.history(params))
        batch = DeviceExamples(examples, torch.device("cpu")).batch(torch.arange(len(examples)), None)
        if spec.regime == "positions":
            assert np.array_equal((batch.targets != 0).sum(1).numpy(), regime.supervised(examples.sizes))
        else:                                        # masked: hidden with probability mask_prob, on average
            draws = np.random.default_rng(0).random((2000, *batch.inputs.shape)) < 0.3
            hidden = (draws & (batch.inputs != 0).numpy()).sum(2).mean(0)
            np.testing.assert_allclose(hidden, regime.supervised(examples.sizes), rtol=0.1)
