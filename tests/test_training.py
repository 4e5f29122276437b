"""Caser learns a sequential pattern, not noise, and the same seed gives the same numbers."""

from __future__ import annotations

import pytest

from seqrec import api
from seqrec.settings import build_run_config
from tests.conftest import markov_log

NUM_ITEMS = 200


def run(log, seed=0, **train):
    raw = {"model": "caser", "seed": seed,
           "model_params": {"embedding_dim": 16, "L": 3, "num_h_filters": 8, "num_v_filters": 2, "dropout": 0.1},
           "train": {"loss": "bpr", "lr": 0.01, "batch_size": 256, "epochs": 8} | train,
           "eval": {"protocols": ["d2l-fixed"], "ks": [10]}}
    return api.train(log, build_run_config(raw), progress=False)


@pytest.fixture(scope="module")
def chain():
    return markov_log(num_users=300, num_items=NUM_ITEMS, length=20, seed=1)


def test_caser_learns_a_chain_far_above_chance(chain):
    chance = 10 / (NUM_ITEMS - 19)                         # ten of the items the user has not seen yet
    result = run(chain)
    assert result.metrics["d2l-fixed"]["hr@10"] > 5 * chance
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_a_shuffled_log_is_not_learned():
    shuffled = markov_log(num_users=300, num_items=NUM_ITEMS, length=20, seed=1, shuffled=True)
    chance = 10 / (NUM_ITEMS - 19)
    assert run(shuffled).metrics["d2l-fixed"]["hr@10"] < 2 * chance


@pytest.mark.parametrize("loss", ["hinge", "bce"])
def test_other_losses_learn_too(chain, loss):
    assert run(chain, loss=loss).metrics["d2l-fixed"]["hr@10"] > 5 * 10 / (NUM_ITEMS - 19)


def test_same_seed_same_numbers_other_seed_other_numbers(chain):
    a, b, c = run(chain, seed=3, epochs=2), run(chain, seed=3, epochs=2), run(chain, seed=4, epochs=2)
    assert a.metrics == b.metrics and [e["loss"] for e in a.history] == [e["loss"] for e in b.history]
    assert a.metrics != c.metrics


def test_evaluation_every_epoch_is_recorded(chain):
    result = run(chain, epochs=2, eval_every=1)
    assert [e["epoch"] for e in result.history] == [1, 2]
    assert result.history[-1]["d2l-fixed/hr@10"] == result.metrics["d2l-fixed"]["hr@10"]
