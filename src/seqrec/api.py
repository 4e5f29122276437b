"""The Python surface that the CLI (and later the service) use: load data, train, evaluate, report."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqrec import bundle as bundles
from seqrec.config import DataConfig, RunConfig
from seqrec.data.interactions import Interactions
from seqrec.data.movielens import load_ml100k
from seqrec.data.sampling import NegativeSampler
from seqrec.data.sequences import make_windows
from seqrec.data.split import d2l_split
from seqrec.datasets import resolve_ml100k
from seqrec.errors import ConfigError
from seqrec.evaluation.protocols import evaluate
from seqrec.models import build_model, count_parameters, model_config
from seqrec.recommend import recommend as recommend  # re-exported: the API the CLI uses
from seqrec.training import fit, resolve_device

DATASETS = {"ml-100k": lambda cfg: load_ml100k(resolve_ml100k(cfg.data_dir), cfg.verify_checksum)}


def load_dataset(cfg: DataConfig) -> Interactions:
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {cfg.dataset!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[cfg.dataset](cfg)


@dataclass
class TrainResult:
    """A trained model and everything measured about it; `to_json` is the metrics.json contract."""

    model: nn.Module
    config: RunConfig
    metrics: dict[str, dict[str, float]]
    history: list[dict[str, float]]
    timings: dict[str, float]
    num_parameters: int
    dataset: dict[str, Any] = field(default_factory=dict)
    log: Interactions | None = field(default=None, repr=False)    # the training log, for the bundle

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "seed": self.config.seed, "config": self.config.to_dict(),
                "model": {"name": self.config.model, "num_parameters": self.num_parameters},
                "dataset": self.dataset, "history": self.history, "timings": self.timings,
                "versions": package_versions()}

    def write(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "metrics.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


def package_versions() -> dict[str, str]:
    names = ("seqrec", "torch", "numpy", "polars")
    return {"python": platform.python_version()} | {name: version(name) for name in names}


def train(log: Interactions, cfg: RunConfig, progress: bool | None = None) -> TrainResult:
    """Split `log` by the protocol, train cfg.model on the training windows, evaluate every protocol."""
    started = time.perf_counter()
    params = model_config(cfg.model, cfg.model_params)
    split = d2l_split(log)
    windows = make_windows(split.train, params.L, cfg.train.T)
    sampler = NegativeSampler(split.train, log.num_items)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.model_params, log.num_users, log.num_items)
    device = resolve_device(cfg.train.device)

    def evaluate_all(model: nn.Module) -> dict[str, dict[str, float]]:
        model.eval()
        return {p: evaluate(model, split.test, p, params.L, log.num_users, log.num_items, cfg.eval.ks,
                            cfg.eval.batch_size, device) for p in cfg.eval.protocols}

    def each_epoch(epoch: int, model: nn.Module) -> dict[str, float] | None:
        if not cfg.train.eval_every or epoch % cfg.train.eval_every:
            return None
        return {f"{p}/{k}": v for p, m in evaluate_all(model).items() for k, v in m.items()}

    prepared = time.perf_counter()
    history = fit(model, windows, sampler, cfg.train, cfg.seed, each_epoch, progress)
    trained = time.perf_counter()
    metrics = evaluate_all(model)
    evaluated = time.perf_counter()
    train_seconds = history.train_seconds
    timings = {"prepare_seconds": prepared - started, "train_seconds": train_seconds,
               "eval_seconds": evaluated - trained, "total_seconds": evaluated - started,
               "train_windows_per_second": history.windows_seen / train_seconds if train_seconds else 0.0,
               "windows_per_epoch": len(windows)}
    dataset = {"name": cfg.data.dataset, "sha256": log.checksum, "num_users": log.num_users,
               "num_items": log.num_items, "num_events": len(log), "device": str(device)}
    return TrainResult(model.cpu().eval(), cfg, metrics, history.epochs, timings, count_parameters(model), dataset, log)


def save_bundle(result: TrainResult, path: Path) -> Path:
    """Write the bundle of a trained model to folder `path` (atomically; see seqrec.bundle)."""
    if result.log is None:
        raise ConfigError("this TrainResult carries no training log, so no bundle can be made")
    made = bundles.make_bundle(result.model, result.log, result.config.to_dict(), result.metrics)
    return bundles.save_bundle(made, path)


load_bundle = bundles.load_bundle
