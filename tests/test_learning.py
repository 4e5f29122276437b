"""Every trainable model learns a synthetic sequential pattern; sequence models learn order, not noise."""

from __future__ import annotations

import pytest

from seqrec import api
from seqrec.report import results_table
from seqrec.settings import build_run_config
from tests.conftest import markov_log

NUM_ITEMS = 200
CHANCE = 10 / (NUM_ITEMS - 19)                  # hr@10 of a random ranking of the items a user has not seen
SETTINGS = {
    "sasrec": ({"L": 5, "embedding_dim": 32, "num_blocks": 1, "dropout": 0.1},
               {"loss": "softmax", "lr": 0.01, "batch_size": 128, "epochs": 8}),
    "gru4rec": ({"L": 5, "embedding_dim": 32, "dropout": 0.1},
                {"loss": "softmax", "lr": 0.01, "batch_size": 128, "epochs": 8}),
    "bert4rec": ({"L": 6, "embedding_dim": 32, "num_blocks": 1, "num_heads": 2, "dropout": 0.1},
                 {"loss": "softmax", "lr": 0.01, "batch_size": 128, "epochs": 8}),
    "markov": ({"L": 3}, {}),
}


def run(log, name, **train):
    params, base = SETTINGS[name]
    raw = {"model": name, "seed": 0, "model_params": params, "train": base | train,
           "eval": {"protocols": ["d2l-fixed"], "ks": [10]}}
    return api.train(log, build_run_config(raw), progress=False).metrics["d2l-fixed"]["hr@10"]


@pytest.fixture(scope="module")
def chain():
    return markov_log(num_users=300, num_items=NUM_ITEMS, length=20, seed=1)


@pytest.fixture(scope="module")
def shuffled():
    return markov_log(num_users=300, num_items=NUM_ITEMS, length=20, seed=1, shuffled=True)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_sequence_models_learn_a_chain_far_above_chance(chain, name):
    assert run(chain, name) > 5 * CHANCE


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_sequence_models_do_not_learn_a_shuffled_log(shuffled, name):
    assert run(shuffled, name) < 2 * CHANCE


@pytest.mark.parametrize(("name", "loss"), [("sasrec", "bpr"), ("sasrec", "sampled-softmax"),
                                           ("bert4rec", "sampled-softmax")])
def test_sampled_losses_train_positionwise_and_masked_models_too(chain, name, loss):
    assert run(chain, name, loss=loss, num_negatives=4) > 5 * CHANCE


@pytest.mark.parametrize(("name", "negatives"), [("sasrec", "popularity"), ("sasrec", "in-batch"),
                                                ("gru4rec", "popularity"), ("bert4rec", "in-batch")])
def test_shared_logq_corrected_negatives_train_sequence_models(chain, name, negatives):
    assert run(chain, name, loss="sampled-softmax", negatives=negatives, num_negatives=32) > 5 * CHANCE


def test_caser_learns_with_shared_negatives_too(chain):
    from tests.test_training import run as run_caser
    result = run_caser(chain, loss="sampled-softmax", negatives="popularity", num_negatives=32)
    assert result.metrics["d2l-fixed"]["hr@10"] > 5 * CHANCE


def test_bprmf_learns_which_items_go_together(chain):
    """BPR-MF ignores order, but the chain makes neighbouring items co-occur in users' histories."""
    raw = {"model": "bprmf", "seed": 0, "model_params": {"embedding_dim": 16},
           "train": {"loss": "bpr", "lr": 0.02, "batch_size": 256, "epochs": 15},
           "eval": {"protocols": ["d2l-fixed"], "ks": [10]}}
    assert api.train(chain, build_run_config(raw), progress=False).metrics["d2l-fixed"]["hr@10"] > 3 * CHANCE


def test_popularity_counts_every_training_target(chain):
    raw = {"model": "pop", "eval": {"protocols": ["d2l-fixed"], "ks": [10, 50]}}
    result = api.train(chain, build_run_config(raw), progress=False)
    # every training event but each user's first is a target (it has an item before it); the test event is not
    assert result.model.counts.sum().item() == len(chain) - 2 * 300
    assert result.history[0]["windows"] == len(chain) - 2 * 300
    assert "loss" not in result.history[0] and results_table(result).row_count > 0   # no loss, still a report
