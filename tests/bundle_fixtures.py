"""Bundles for the bundle, recommend, service and export tests: an untrained Caser (random weights,
large enough to give distinct scores) over a small synthetic log, so nothing has to train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seqrec.bundle import Bundle, make_bundle, save_bundle
from seqrec.data.interactions import Interactions
from seqrec.models.registry import build_model
from tests.conftest import make_log, markov_log, run_config

PARAMS = {"embedding_dim": 8, "L": 3, "num_h_filters": 4, "num_v_filters": 2, "dropout": 0.0, "init_std": 0.3}


def random_bundle(log: Interactions | None = None, seed: int = 0) -> Bundle:
    log = markov_log(num_users=40, num_items=30, length=12, seed=seed) if log is None else log
    cfg = run_config(model_params=PARAMS, seed=seed)
    torch.manual_seed(seed)
    model = build_model(cfg.model, cfg.model_params, log.num_users, log.num_items)
    return make_bundle(model, log, cfg, {"d2l-fixed": {"hr@10": 0.5}})


def titled_log() -> Interactions:
    """String user ids, integer item ids with titles; user 'u9' has seen every item but one (9)."""
    users = ["u1"] * 5 + ["u2"] * 4 + ["u9"] * 8
    items = [3, 1, 4, 1, 5, 9, 2, 6, 5, 1, 2, 3, 4, 5, 6, 7, 8]
    log = make_log(users, items, times=[5, 1, 4, 1, 5, 9, 2, 6, 5, 1, 2, 3, 4, 5, 6, 7, 8])
    titles = np.array([""] + [f"title {i}" for i in log.item_map.external.tolist()], dtype=object)
    return Interactions(log.users, log.items, log.times, log.user_map, log.item_map, titles, "abc")


def saved_random_bundle(factory: pytest.TempPathFactory) -> Path:
    """A saved bundle folder for a module-scoped fixture; tests that modify it copy it first."""
    return save_bundle(random_bundle(), factory.mktemp("bundles") / "markov")
