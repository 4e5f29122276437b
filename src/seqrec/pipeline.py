"""One run end to end: split the log for the protocols, train the model its spec describes, evaluate."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from seqrec.config import RunConfig
from seqrec.data.filters import require_events
from seqrec.data.interactions import Interactions
from seqrec.data.sampling import NegativeSampler
from seqrec.data.sessions import sessionize
from seqrec.data.split import Split, stages
from seqrec.evaluation.protocols import SPLITS, evaluate, metric_key, sampled_candidates, split_family
from seqrec.models.base import count_parameters
from seqrec.models.registry import MODELS
from seqrec.runs import TrainResult, write_run
from seqrec.selection import EarlyStopping
from seqrec.training import STOP, fit, make_regime, resolve_device


def split_for(log: Interactions, cfg: RunConfig) -> tuple[Interactions, Split, int]:
    """The split the run's protocols share, after applying data.short_users to users with too few events.

    Returns the (possibly reduced) log, the split, and the number of users dropped.
    """
    split_fn, min_events = SPLITS[split_family(cfg.eval.protocols)]
    if cfg.data.session_gap is not None:
        log = sessionize(log, cfg.data.session_gap)
    log, dropped = require_events(log, min_events, cfg.data.short_users, cfg.eval.protocols[0])
    return log, split_fn(log), dropped


def train(log: Interactions, cfg: RunConfig, progress: bool | None = None) -> TrainResult:
    """Split `log` by the protocols' split, train cfg.model on the training examples, evaluate every protocol.

    With train.early_stopping_metric set, the first protocol is evaluated on the validation cases after
    every epoch (history gets `valid/PROTOCOL/METRIC`), training stops after train.patience epochs
    without improvement, and the best epoch's weights are restored before the test evaluation.
    """
    started = time.perf_counter()
    spec = MODELS[cfg.model]
    L = spec.history(cfg.model_params)
    log, split, dropped = split_for(log, cfg)
    torch.manual_seed(cfg.seed)
    model = spec.build(cfg.model_params, log.num_users, log.num_items)
    regime = make_regime(spec.regime, cfg.train, log.num_items)
    examples = regime.examples(split.train, L)
    sampler = NegativeSampler(split.train, log.num_items)
    device = resolve_device(cfg.train.device)
    primary, metric = cfg.eval.protocols[0], cfg.train.early_stopping_metric
    cases = stages(split)
    notes = []
    if metric is not None and split.valid is None:
        notes.append(f"no early stopping: protocol {primary} has no validation split, so all {cfg.train.epochs} "
                     "epochs were trained (early stopping needs loo-full, loo-sampled or caser-paper)")
        metric = None
    negatives = sampled_candidates(log, split, cfg.eval.protocols, cfg.eval.num_sampled, cfg.seed)

    def evaluate_all(model: nn.Module, stage: str) -> dict[str, dict[str, float]]:
        model.eval()
        return {p: evaluate(model, cases[stage], p, L, log.num_users, log.num_items, cfg.eval.ks,
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
            key = metric_key(primary, stopper.metric, cfg.eval.num_sampled)    # checked by seqrec.settings
            record[STOP] = stopper.step(epoch, metrics[primary][key], model)
        return record

    prepared = time.perf_counter()
    history = fit(model, regime, examples, sampler, cfg.train, cfg.seed, each_epoch, progress)
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
               "windows_per_epoch": len(examples)}
    dataset = {"name": cfg.data.path or cfg.data.dataset, "sha256": log.checksum, "num_users": log.num_users,
               "num_items": log.num_items, "num_events": len(log), "device": str(device),
               "split": split_family(cfg.eval.protocols), "dropped_users": dropped,
               "cases": {stage: len(c) for stage, c in cases.items()}, "source": log.source}
    return TrainResult(model.cpu().eval(), cfg, metrics, history.epochs, timings, count_parameters(model), dataset,
                       validation, stopper.best_epoch if stopper is not None else None, log, notes)


def run(log: Interactions, cfg: RunConfig, out_dir: Path, progress: bool | None = None) -> TrainResult:
    """Train and evaluate `cfg` on `log`, then write the run folder: OUT/metrics.json and OUT/bundle."""
    result = train(log, cfg, progress)
    write_run(result, out_dir)
    return result
