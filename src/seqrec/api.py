"""The Python surface that the CLI (and later the service) use: load data, train, evaluate, report."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seqrec import bundle as bundles
from seqrec.config import DataConfig, RunConfig
from seqrec.data.filters import Filters, require_events
from seqrec.data.interactions import Interactions
from seqrec.data.movielens import load_ml100k
from seqrec.data.readers import Columns, read_log
from seqrec.data.sampling import NegativeSampler
from seqrec.data.sequences import Sequences, make_position_windows, make_windows
from seqrec.data.sessions import sessionize, synthetic_sessions
from seqrec.data.split import Split
from seqrec.datasets import resolve_ml100k
from seqrec.errors import ConfigError
from seqrec.evaluation.protocols import PROTOCOLS, SPLITS, evaluate, metric_key, sampled_negatives, split_family
from seqrec.models import PositionwiseRecommender, build_model, count_parameters, model_config
from seqrec.recommend import recommend as recommend  # re-exported: the API the CLI uses
from seqrec.selection import EarlyStopping
from seqrec.training import STOP, fit, resolve_device

DATASETS = {"ml-100k": lambda cfg, filters: load_ml100k(resolve_ml100k(cfg.data_dir), cfg.verify_checksum, filters),
            "synthetic-sessions": lambda cfg, filters: synthetic_sessions(seed=0)}


def data_source(data: str) -> dict[str, str]:
    """`--data` as settings: a known dataset name (e.g. ml-100k) unless a file of that name exists."""
    if data in DATASETS and not Path(data).exists():
        return {"data.dataset": data}
    return {"data.path": data}


def load_dataset(cfg: DataConfig) -> Interactions:
    """The log named by `cfg`: a file (cfg.path, read with its column mapping) or a known dataset; filtered."""
    filters = Filters(cfg.min_rating, cfg.dedupe, cfg.k_core)
    if cfg.path is not None:
        return read_log(Path(cfg.path), cfg.format, Columns(cfg.user_col, cfg.item_col, cfg.time_col, cfg.rating_col),
                        filters, cfg.has_header, cfg.numeric_ids)
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {cfg.dataset!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[cfg.dataset](cfg, filters)


def split_for(log: Interactions, cfg: RunConfig) -> tuple[Interactions, Split, int]:
    """The split the run's protocols share, after applying data.short_users to users with too few events.

    Returns the (possibly reduced) log, the split, and the number of users dropped.
    """
    split_fn, min_events = SPLITS[split_family(cfg.eval.protocols)]
    if cfg.data.session_gap is not None:
        log = sessionize(log, cfg.data.session_gap)
    log, dropped = require_events(log, min_events, cfg.data.short_users, cfg.eval.protocols[0])
    return log, split_fn(log), dropped


def evaluation_negatives(log: Interactions, split: Split, cfg: RunConfig) -> dict[str, np.ndarray]:
    """The sampled candidates of loo-sampled per stage ('test', 'valid'): a function of the log, the split,
    eval.num_sampled and the seed only, so every model sees the same ones. Empty for full-ranking protocols."""
    if not any(PROTOCOLS[p].candidates == "sampled" for p in cfg.eval.protocols):
        return {}
    seen = all_items(log)
    stages = {"test": split.test} | ({"valid": split.valid} if split.valid is not None else {})
    return {stage: sampled_negatives(seen, cases.users, log.num_items, cfg.eval.num_sampled, (cfg.seed, i))
            for i, (stage, cases) in enumerate(stages.items())}


def all_items(log: Interactions) -> Sequences:
    """Every item each user interacted with (the items loo-sampled never draws as negatives)."""
    order = np.argsort(log.users, kind="stable")
    return Sequences.from_sorted(log.users[order], log.items[order])


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
    validation: dict[str, dict[str, float]] = field(default_factory=dict)  # final metrics on the validation cases
    best_epoch: int | None = None       # the epoch whose weights were kept (early stopping), else None
    log: Interactions | None = field(default=None, repr=False)    # the training log, for the bundle
    notes: list[str] = field(default_factory=list)  # settings that could not apply, said in words

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "validation": self.validation, "best_epoch": self.best_epoch,
                "seed": self.config.seed, "config": self.config.to_dict(),
                "model": {"name": self.config.model, "num_parameters": self.num_parameters},
                "dataset": self.dataset, "history": self.history, "timings": self.timings,
                "versions": package_versions(), "notes": self.notes}

    def write(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "metrics.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


def package_versions() -> dict[str, str]:
    names = ("seqrec", "torch", "numpy", "polars")
    return {"python": platform.python_version()} | {name: version(name) for name in names}


def train(log: Interactions, cfg: RunConfig, progress: bool | None = None) -> TrainResult:
    """Split `log` by the protocols' split, train cfg.model on the training windows, evaluate every protocol.

    With train.early_stopping_metric set, the first protocol is evaluated on the validation cases after
    every epoch (history gets `valid/PROTOCOL/METRIC`), training stops after train.patience epochs
    without improvement, and the best epoch's weights are restored before the test evaluation.
    """
    started = time.perf_counter()
    params = model_config(cfg.model, cfg.model_params)
    log, split, dropped = split_for(log, cfg)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.model_params, log.num_users, log.num_items)
    windows = (make_position_windows(split.train, params.L) if isinstance(model, PositionwiseRecommender)
               else make_windows(split.train, params.L, cfg.train.T))
    sampler = NegativeSampler(split.train, log.num_items)
    device = resolve_device(cfg.train.device)
    primary, metric = cfg.eval.protocols[0], cfg.train.early_stopping_metric
    stages = {"test": split.test} | ({"valid": split.valid} if split.valid is not None else {})
    notes = []
    if metric is not None and split.valid is None:
        notes.append(f"no early stopping: protocol {primary} has no validation split, so all {cfg.train.epochs} "
                     "epochs were trained (early stopping needs loo-full, loo-sampled or caser-paper)")
        metric = None
    negatives = evaluation_negatives(log, split, cfg)

    def evaluate_all(model: nn.Module, stage: str) -> dict[str, dict[str, float]]:
        model.eval()
        return {p: evaluate(model, stages[stage], p, params.L, log.num_users, log.num_items, cfg.eval.ks,
                            cfg.eval.batch_size, device, negatives.get(stage), cfg.eval.allow_repeats)
                for p in cfg.eval.protocols}

    stopper = EarlyStopping(metric, cfg.train.patience) if metric is not None else None
    curve_stage = "valid" if split.valid is not None else "test"

    def each_epoch(epoch: int, model: nn.Module) -> dict[str, float] | None:
        if stopper is None and (not cfg.train.eval_every or epoch % cfg.train.eval_every):
            return None
        metrics = evaluate_all(model, curve_stage)
        prefix = "valid/" if curve_stage == "valid" else ""          # test curves (d2l) keep "PROTOCOL/METRIC"
        record: dict[str, float] = {f"{prefix}{p}/{k}": v for p, m in metrics.items() for k, v in m.items()}
        if stopper is not None:
            key = metric_key(primary, stopper.metric, cfg.eval.num_sampled)
            if key not in metrics[primary]:
                raise ConfigError(f"train.early_stopping_metric {stopper.metric!r} is not a metric of protocol "
                                  f"{primary}; known: {', '.join(metrics[primary])}")
            record[STOP] = stopper.step(epoch, metrics[primary][key], model)
        return record

    prepared = time.perf_counter()
    history = fit(model, windows, sampler, cfg.train, cfg.seed, each_epoch, progress)
    if stopper is not None:
        stopper.restore(model)
    trained = time.perf_counter()
    metrics = evaluate_all(model, "test")
    validation = evaluate_all(model, "valid") if split.valid is not None else {}
    evaluated = time.perf_counter()
    train_seconds = history.train_seconds
    timings = {"prepare_seconds": prepared - started, "train_seconds": train_seconds,
               "eval_seconds": evaluated - trained, "total_seconds": evaluated - started,
               "train_windows_per_second": history.windows_seen / train_seconds if train_seconds else 0.0,
               "windows_per_epoch": len(windows)}
    dataset = {"name": cfg.data.path or cfg.data.dataset, "sha256": log.checksum, "num_users": log.num_users,
               "num_items": log.num_items, "num_events": len(log), "device": str(device),
               "split": split_family(cfg.eval.protocols), "dropped_users": dropped,
               "cases": {stage: len(cases) for stage, cases in stages.items()}, "source": log.source}
    return TrainResult(model.cpu().eval(), cfg, metrics, history.epochs, timings, count_parameters(model), dataset,
                       validation, stopper.best_epoch if stopper is not None else None, log, notes)


def save_bundle(result: TrainResult, path: Path) -> Path:
    """Write the bundle of a trained model to folder `path` (atomically; see seqrec.bundle)."""
    if result.log is None:
        raise ConfigError("this TrainResult carries no training log, so no bundle can be made")
    made = bundles.make_bundle(result.model, result.log, result.config.to_dict(), result.metrics)
    return bundles.save_bundle(made, path)


load_bundle = bundles.load_bundle
