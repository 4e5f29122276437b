"""train.refit: the test stage uses a fresh model trained on training + validation items for the selected epochs."""

from __future__ import annotations

import numpy as np
import pytest

from seqrec import api
from seqrec.errors import ConfigError
from seqrec.settings import build_run_config
from tests.conftest import make_log, markov_log, train_markov


def handoff_log(pairs: int = 100):
    """User P_k: [n, n', a, b]; user Q_k: [m, m', n', a]. Q_k's test transition n' -> a is P_k's validation
    transition, seen in training only when validation items are trained on."""
    k = np.arange(pairs)
    n, n2, a, b = 4 * k + 1, 4 * k + 2, 4 * k + 3, 4 * k + 4
    m, m2 = 4 * pairs + 2 * k + 1, 4 * pairs + 2 * k + 2
    sequences = np.concatenate([np.stack([n, n2, a, b], 1), np.stack([m, m2, n2, a], 1)])    # (2 pairs, 4)
    users = np.repeat(np.arange(2 * pairs), 4)
    return make_log(users, sequences.ravel())


def markov_hr1(log, refit: bool) -> float:
    return train_markov(log, L=1, k=1, refit=refit).metrics["loo-full"]["hr@1"]


def test_refit_trains_on_the_validation_items():
    log = handoff_log()
    assert markov_hr1(log, refit=True) == 0.5             # every Q_k is a hit: P_k's validation step taught it
    assert markov_hr1(log, refit=False) < 0.05            # measured 0.0: nothing in training leads from n' to a


def caser(refit: bool):
    raw = {"model": "caser", "seed": 0,
           "model_params": {"embedding_dim": 16, "L": 3, "num_h_filters": 8, "num_v_filters": 2, "dropout": 0.1},
           "train": {"loss": "bpr", "lr": 0.01, "batch_size": 256, "epochs": 6, "refit": refit,
                     "early_stopping_metric": "auto", "patience": 2},
           "eval": {"protocols": ["loo-full"]}}
    return api.train(markov_log(num_users=200, num_items=100, length=20, seed=2), build_run_config(raw),
                     progress=False)


def test_refit_keeps_the_selection_and_retrains_for_the_best_epoch():
    plain, refit = caser(False), caser(True)
    assert refit.validation == plain.validation and refit.best_epoch == plain.best_epoch
    assert refit.refit_epochs == plain.best_epoch and plain.refit_epochs is None
    assert refit.metrics != plain.metrics
    assert any("train.refit" in note for note in refit.notes) and refit.timings["refit_seconds"] > 0


def test_refit_needs_a_validation_split():
    with pytest.raises(ConfigError, match="train.refit needs a protocol with a validation split .*not d2l"):
        build_run_config({"train": {"refit": True}, "eval": {"protocols": ["d2l"]}})
