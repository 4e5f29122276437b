"""Model selection: early stopping on a validation metric, best weights restored, the curve recorded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from seqrec import api
from seqrec.config import TrainConfig
from seqrec.data.sampling import NegativeSampler
from seqrec.data.sequences import Sequences, make_windows
from seqrec.errors import ConfigError
from seqrec.models.registry import build_model
from seqrec.selection import EarlyStopping
from seqrec.training import STOP, fit, make_regime
from tests.conftest import markov_log, run_config


def test_early_stopping_stops_at_patience_and_restores_the_best_weights():
    model = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping("ndcg@10", patience=2)
    stops = []
    for epoch, value in enumerate([0.1, 0.3, 0.2, 0.25, 0.4], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)                # the weights "learned" in this epoch
        stops.append(stopper.step(epoch, value, model))
        if stops[-1]:
            break
    assert stops == [False, False, False, True]      # epochs 3 and 4 do not beat epoch 2
    assert stopper.best_epoch == 2 and stopper.best_value == 0.3
    stopper.restore(model)
    assert model.weight.item() == 2.0


def test_nan_never_counts_as_an_improvement():
    stopper = EarlyStopping("mrr", patience=1)
    model = nn.Linear(1, 1)
    assert stopper.step(1, float("nan"), model) is True and stopper.best_epoch == 0


def test_fit_stops_when_the_callback_says_so():
    seqs = Sequences.from_sorted(np.array([1, 1, 1, 1]), np.array([1, 2, 3, 4]))
    model = build_model("caser", {"embedding_dim": 4, "L": 2}, 1, 6)
    cfg = TrainConfig(epochs=5, batch_size=8, device="cpu")
    history = fit(model, make_regime("windows", cfg, 6), make_windows(seqs, 2), NegativeSampler(seqs, 6), cfg, 0,
                  lambda epoch, m: {"seen": epoch, STOP: epoch == 2}, progress=False)
    assert [e["epoch"] for e in history.epochs] == [1, 2] and STOP not in history.epochs[-1]


def test_train_keeps_the_best_validation_epoch():
    log = markov_log(num_users=60, num_items=30, length=12)
    cfg = run_config(model_params={"embedding_dim": 8, "dropout": 0.0},
                     train={"epochs": 6, "lr": 0.05, "batch_size": 64, "device": "cpu",
                            "early_stopping_metric": "ndcg@10", "patience": 2},
                     eval={"protocols": ["loo-full"]})
    result = api.train(log, cfg, progress=False)
    curve = [e["valid/loo-full/ndcg@10"] for e in result.history]
    assert len(curve) == len(result.history) >= 1
    best = max(range(len(curve)), key=lambda i: (curve[i], -i))
    assert result.best_epoch == best + 1
    assert len(curve) == 6 or len(curve) - result.best_epoch == 2          # stopped exactly at patience
    # the restored weights reproduce the best epoch's validation value
    assert result.validation["loo-full"]["ndcg@10"] == pytest.approx(curve[best], abs=1e-6)
    assert result.to_json()["best_epoch"] == result.best_epoch


def test_early_stopping_without_a_validation_split_trains_all_epochs_and_says_so():
    log = markov_log(num_users=20, num_items=20, length=8)
    d2l = run_config(train={"epochs": 2, "device": "cpu", "early_stopping_metric": "hr@10"},
                     eval={"protocols": ["d2l"]})
    result = api.train(log, d2l, progress=False)
    assert len(result.history) == 2 and result.best_epoch is None
    assert "protocol d2l has no validation split" in result.to_json()["notes"][0]


def test_early_stopping_needs_a_metric_of_the_protocol_before_any_training():
    with pytest.raises(ConfigError, match="'hr@7' is not a metric of protocol loo-full"):
        run_config(train={"early_stopping_metric": "hr@7"})
    with pytest.raises(ConfigError, match="'ndcg@10' is not a metric of protocol caser-paper; known: precision@1"):
        run_config(train={"early_stopping_metric": "ndcg@10"}, eval={"protocols": ["caser-paper"]})
