"""Shared fixtures: the real MovieLens-100K copy, and tiny synthetic logs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from seqrec import api
from seqrec.config import RunConfig
from seqrec.data.interactions import IdMap, Interactions
from seqrec.runs import TrainResult
from seqrec.settings import build_run_config

REPO = Path(__file__).resolve().parents[1]


def _ml100k_candidates() -> list[Path]:
    env = os.environ.get("SEQREC_DATA_DIR")
    return ([Path(env)] if env else []) + [REPO.parent / "shared" / "datasets" / "ml-100k"]


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The real MovieLens-100K files; missing data fails loudly in CI and skips elsewhere."""
    for folder in _ml100k_candidates():
        if (folder / "u.data").is_file():
            return folder
    message = f"MovieLens-100K not found (looked in {', '.join(map(str, _ml100k_candidates()))})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _shared_copy(name: str, variable: str, marker: str) -> Path:
    """A real dataset's local copy ($variable, else ../shared/datasets/NAME); fails in CI, skips elsewhere."""
    candidates = ([Path(os.environ[variable])] if os.environ.get(variable) else []) + [
        REPO.parent / "shared" / "datasets" / name]
    for folder in candidates:
        if (folder / marker).is_file():
            return folder
    message = f"{name} not found (looked in {', '.join(map(str, candidates))})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def ml1m_dir() -> Path:
    """The real MovieLens-1M copy (ml-1m.txt form)."""
    return _shared_copy("ml-1m", "SEQREC_ML1M_DIR", "ml-1m.txt")


@pytest.fixture(scope="session")
def ml_latest_small_dir() -> Path:
    """The real MovieLens latest-small copy."""
    return _shared_copy("ml-latest-small", "SEQREC_ML_LATEST_SMALL_DIR", "ratings.csv")


@pytest.fixture(scope="session")
def amazon_video_games_dir() -> Path:
    """The real Amazon Video Games copy (SASRec preprocessing)."""
    return _shared_copy("amazon-video-games", "SEQREC_AMAZON_VIDEO_GAMES_DIR", "video_games.txt")


@pytest.fixture(autouse=True)
def _cpu_and_threads():
    """Tests run on the CPU with a fixed thread count, so results do not depend on the machine."""
    torch.set_num_threads(2)
    yield


def run_config(model: str = "caser", **sections) -> RunConfig:
    """A validated RunConfig from nested settings: run_config(train={"epochs": 2}, eval={"protocols": ["d2l"]})."""
    return build_run_config({"model": model, **sections})


def train_markov(log: Interactions, L: int, k: int, protocol: str = "loo-full", **train) -> TrainResult:
    """Item-transition over the last L items trained on `log` with `train` settings, evaluated at HR@k."""
    cfg = run_config("markov", model_params={"L": L}, train=train, eval={"protocols": [protocol], "ks": [k]})
    return api.train(log, cfg, progress=False)


def make_log(users, items, times=None) -> Interactions:
    """Interactions from external ids (in event order); times default to the row order."""
    users, items = np.asarray(users), np.asarray(items)
    times = np.arange(len(users)) if times is None else np.asarray(times)
    user_map, u = IdMap.fit(users)
    item_map, i = IdMap.fit(items)
    return Interactions(u, i, times.astype(np.int64), user_map, item_map)


def markov_log(num_users: int = 200, num_items: int = 50, length: int = 30, seed: int = 0,
               shuffled: bool = False) -> Interactions:
    """Each user walks a fixed chain i -> i + 1 (mod num_items) from a random start, with 10% noise.

    With `shuffled`, the item column is permuted across the whole log, destroying every pattern
    (within a user, permuting in time would keep the chain's neighbourhood, which a model can still use).
    """
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, num_items, num_users)
    items = (starts[:, None] + np.arange(length)[None, :]) % num_items
    noise = rng.random(items.shape) < 0.1
    items = np.where(noise, rng.integers(0, num_items, items.shape), items) + 1
    if shuffled:
        items = rng.permutation(items.ravel()).reshape(items.shape)
    users = np.repeat(np.arange(1, num_users + 1), length)
    times = np.tile(np.arange(length), num_users)
    return make_log(users, items.ravel(), times)
