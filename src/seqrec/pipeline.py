"""One run end to end: split the log for the protocols, train the model its spec describes, evaluate."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seqrec.config import RunConfig
from seqrec.data.filters import require_events, shuffle_ties
from seqrec.data.interactions import Interactions
from seqrec.data.sampling import NegativeSampler
from seqrec.data.sequences import Sequences, Windows
from seqrec.data.sessions import sessionize
from seqrec.data.split import EvalCases, Split, stages
from seqrec.errors import ConfigError, DataError
from seqrec.evaluation.protocols import (
    SPLITS,
    case_sample,
    evaluate,
    metric_key,
    metric_names,
    repeat_cases,
    sample_cases,
    sampled_candidates,
    split_family,
    take_cases,
    validated_protocols,
)
from seqrec.losses import SAMPLED_LOSSES
from seqrec.memory import check_fits, model_bytes, on_meta
from seqrec.models.base import count_parameters
from seqrec.models.registry import MODELS
from seqrec.runs import CHECKPOINT, TrainResult, check_run_folder, write_run
from seqrec.selection import EarlyStopping
from seqrec.settings import build_run_config
from seqrec.training import STOP, TrainState, fit, load_checkpoint, make_regime, resolve_device, save_checkpoint
from seqrec.training.distributed import Ranks, barrier, join, sum_over_ranks
from seqrec.training.regimes import Regime

EXAMPLE_BYTES = 32       # per training event and window position: int64 indices, values and masks while gathering


def split_for(log: Interactions, cfg: RunConfig) -> tuple[Interactions, Split, int]:
    """The split the run's protocols share, after ordering ties in time (data.ties) and applying data.short_users to
    users with too few events.

    Returns the (possibly reordered or reduced) log, the split, and the number of users dropped.
    """
    split_fn, min_events = SPLITS[split_family(cfg.eval.protocols)]
    if cfg.data.ties == "shuffle":
        log = shuffle_ties(log, cfg.seed)
    if cfg.data.session_gap is not None:
        log = sessionize(log, cfg.data.session_gap)
    log, dropped = require_events(log, min_events, cfg.data.short_users, cfg.eval.protocols[0])
    return log, split_fn(log), dropped


def _evaluate_shared(model: nn.Module, cases: EvalCases, protocol: str, L: int, num_users: int, num_items: int,
                     cfg: RunConfig, negatives: np.ndarray | None, device: torch.device, ranks: Ranks
                     ) -> dict[str, float]:
    """`evaluate`, each process ranking every world-th case; the per-process means are combined by their counts."""
    def ranked(these: EvalCases, drawn: np.ndarray | None) -> dict[str, float]:
        return evaluate(model, these, protocol, L, num_users, num_items, cfg.eval.ks, cfg.eval.batch_size, device,
                        drawn, cfg.eval.allow_repeats, MODELS[cfg.model].factorised)

    if ranks.world == 1:
        return ranked(cases, negatives)
    rows = np.arange(len(cases))[ranks.rank::ranks.world]
    mine = ranked(take_cases(cases, rows), None if negatives is None else negatives[rows]) if len(rows) else {}
    names = metric_names(protocol, cfg.eval.ks, cfg.eval.num_sampled)
    sums = torch.tensor([mine.get(name, 0.0) * len(rows) for name in names] + [len(rows)], dtype=torch.float64)
    totals = sum_over_ranks(sums, ranks)
    return {name: (totals[i] / totals[-1]).item() for i, name in enumerate(names)}


def _plan_memory(cfg: RunConfig, L: int, split: Split, num_users: int, num_items: int) -> None:
    spec = MODELS[cfg.model]
    width = L + max(cfg.train.T, 1) + 1
    needs = {"training windows": len(split.train.items) * width * EXAMPLE_BYTES}
    check_fits(needs, f"lower model_params.L (now {L}) or train.T (now {cfg.train.T})")
    model = on_meta(lambda: spec.build(cfg.model_params, num_users, num_items))
    check_fits(needs | {"model": model_bytes(model)}, "use a smaller model (model_params) or a smaller catalogue")


def train(log: Interactions, cfg: RunConfig, progress: bool | None = None, checkpoint: Path | None = None,
          resume: TrainState | None = None, *, search: Callable[[int, float], None] | None = None) -> TrainResult:
    """Split `log` by the protocols' split, train cfg.model on the training examples, evaluate every protocol.

    With train.early_stopping_metric set, the first protocol is evaluated on the validation cases after
    every epoch (history gets `valid/PROTOCOL/METRIC`), training stops after train.patience epochs
    without improvement, and the best epoch's weights are restored before the test evaluation.
    checkpoint: a folder written after every epoch (seqrec.training.checkpoint); `resume` continues
    from such a state, giving the numbers of an uninterrupted run.
    search: makes this a run of a hyper-parameter search (seqrec.tuning): called with (epoch, validation value
    of train.early_stopping_metric) after every validated epoch, it may raise to end the run (a pruned trial);
    the test cases are never evaluated (`metrics` stays empty), so a search cannot depend on them.
    """
    started = time.perf_counter()
    spec = MODELS[cfg.model]
    L = spec.history(cfg.model_params)
    if resume is not None and resume.extra["dataset_sha256"] != log.checksum:
        raise ConfigError(f"the data has changed since the interrupted run started (sha256 {log.checksum[:12]}..., "
                          f"the run's {resume.extra['dataset_sha256'][:12]}...); start a new run instead")
    log, split, dropped = split_for(log, cfg)
    _plan_memory(cfg, L, split, log.num_users, log.num_items)
    device = resolve_device(cfg.train.device)
    ranks = join(device)
    model = _fresh_model(cfg, log.num_users, log.num_items, ranks)
    regime, examples, sampler = _training_inputs(cfg, split.train, L, log.num_items)
    primary, metric = cfg.eval.protocols[0], cfg.train.early_stopping_metric
    every_case = stages(split)
    cases = {stage: sample_cases(c, cfg.eval.max_users, cfg.seed) for stage, c in every_case.items()}
    notes = []
    if metric is not None and split.valid is None:
        notes.append(f"no early stopping: protocol {primary} has no validation split, so all {cfg.train.epochs} "
                     f"epochs were trained (early stopping needs {validated_protocols()})")
        metric = None
    negatives = {stage: drawn[case_sample(len(every_case[stage]), cfg.eval.max_users, cfg.seed)]
                 for stage, drawn in sampled_candidates(log, split, cfg.eval.protocols, cfg.eval.num_sampled,
                                                         cfg.seed).items()}

    def evaluate_all(model: nn.Module, stage: str) -> dict[str, dict[str, float]]:
        model.eval()
        return {p: _evaluate_shared(model, cases[stage], p, L, log.num_users, log.num_items, cfg,
                                    negatives.get(stage), device, ranks) for p in cfg.eval.protocols}

    stopper = EarlyStopping(metric, cfg.train.patience) if metric is not None else None
    curve_stage = "valid" if split.valid is not None else "test"
    if resume is not None and stopper is not None:
        stopper.load_state(resume.extra["early_stopping"], resume.extra_tensors)

    def each_epoch(epoch: int, model: nn.Module) -> dict[str, float] | None:
        if stopper is None and (not cfg.train.eval_every or epoch % cfg.train.eval_every):
            return None
        metrics = evaluate_all(model, curve_stage)
        prefix = "valid/" if curve_stage == "valid" else ""          # test curves (d2l) keep "PROTOCOL/METRIC"
        record: dict[str, float] = {f"{prefix}{p}/{k}": v for p, m in metrics.items() for k, v in m.items()}
        if stopper is not None:
            key = metric_key(primary, stopper.metric, cfg.eval.num_sampled)    # checked by seqrec.settings
            record[STOP] = stopper.step(epoch, metrics[primary][key], model)
            if search is not None:
                search(epoch, metrics[primary][key])
        return record

    def save(state: TrainState) -> None:
        state.extra = {"config": cfg.to_dict(), "dataset_sha256": log.checksum}
        if stopper is not None:
            state.extra["early_stopping"], state.extra_tensors = stopper.state()
        save_checkpoint(state, checkpoint)

    prepared = time.perf_counter()
    history = fit(model, regime, examples, sampler, cfg.train, cfg.seed, each_epoch, progress, resume,
                  save if checkpoint is not None else None, ranks)
    if stopper is not None:
        stopper.restore(model)
    trained = time.perf_counter()
    validation = evaluate_all(model, "valid") if split.valid is not None else {}
    refit_epochs, refit_seconds = None, 0.0
    if cfg.train.refit and search is None:
        refit_epochs = stopper.best_epoch if stopper is not None else cfg.train.epochs
        model, refit_seconds = _refit(cfg, split, L, log.num_users, log.num_items, refit_epochs, progress, ranks)
        notes.append(f"test metrics are those of a fresh model trained for {refit_epochs} epoch(s) on training + "
                     "validation items (train.refit); validation metrics are those of the selected model")
    metrics = evaluate_all(model, "test") if search is None else {}
    evaluated = time.perf_counter()
    train_seconds = history.train_seconds
    timings = {"prepare_seconds": prepared - started, "train_seconds": train_seconds,
               "eval_seconds": evaluated - trained - refit_seconds, "total_seconds": evaluated - started,
               "train_windows_per_second": history.windows_seen / train_seconds if train_seconds else 0.0,
               "windows_per_epoch": len(examples), "threads": torch.get_num_threads(),
               "processes": ranks.world} | ({"refit_seconds": refit_seconds} if refit_epochs is not None else {})
    dataset = {"name": cfg.data.path or cfg.data.dataset, "sha256": log.checksum, "num_users": log.num_users,
               "num_items": log.num_items, "num_events": len(log), "device": str(device),
               "split": split_family(cfg.eval.protocols), "dropped_users": dropped,
               "cases": {stage: len(c) for stage, c in cases.items()},
               "repeat_cases": {stage: repeat_cases(c) for stage, c in cases.items()}, "source": log.source}
    return TrainResult(model.cpu().eval(), cfg, metrics, history.epochs, timings, count_parameters(model), dataset,
                       validation, stopper.best_epoch if stopper is not None else None, refit_epochs, log, notes)


def _fresh_model(cfg: RunConfig, num_users: int, num_items: int, ranks: Ranks) -> nn.Module:
    """cfg.model initialised from cfg.seed, with torch's generator then set for training."""
    torch.manual_seed(cfg.seed)
    model = MODELS[cfg.model].build(cfg.model_params, num_users, num_items)
    if ranks.world > 1:                      # ranks start from rank 0's weights (DDP); dropout differs by rank
        torch.manual_seed(cfg.seed + 1_000_003 * ranks.rank)
    return model


def _training_inputs(cfg: RunConfig, sequences: Sequences, L: int, num_items: int
                     ) -> tuple[Regime, Windows, NegativeSampler | None]:
    """The regime of cfg.model, its training examples from `sequences`, and the sampler of its negatives."""
    regime = make_regime(MODELS[cfg.model].regime, cfg.train, num_items,
                         np.bincount(sequences.items, minlength=num_items + 1))
    examples = regime.examples(sequences, L)
    if len(examples) == 0:
        longest = int(sequences.lengths.max(initial=0))
        raise DataError(f"no training examples: with train.T={cfg.train.T} no training sequence is long enough "
                        f"(the longest has {longest} item{'s' if longest != 1 else ''}); lower train.T or use "
                        "longer histories")
    sampled = cfg.train.loss in SAMPLED_LOSSES and cfg.train.negatives == "uniform" and not regime.counting
    return regime, examples, NegativeSampler(sequences, num_items) if sampled else None


def _refit(cfg: RunConfig, split: Split, L: int, num_users: int, num_items: int, epochs: int,
           progress: bool | None, ranks: Ranks) -> tuple[nn.Module, float]:
    """A fresh model (same seed) trained for `epochs` on what the test cases may see, training + validation
    items (split.refit_sequences), and its training seconds."""
    model = _fresh_model(cfg, num_users, num_items, ranks)
    regime, examples, sampler = _training_inputs(cfg, split.refit_sequences, L, num_items)
    train_cfg = dataclasses.replace(cfg.train, epochs=epochs)
    history = fit(model, regime, examples, sampler, train_cfg, cfg.seed, progress=progress, ranks=ranks)
    return model, history.train_seconds


def run(log: Interactions, cfg: RunConfig, out_dir: Path, progress: bool | None = None,
        resume: TrainState | None = None) -> TrainResult:
    """Train and evaluate `cfg` on `log`, checkpointing into OUT/checkpoint after every epoch, then write the
    run folder: OUT/metrics.json and OUT/bundle, together, replacing what was there (the checkpoint too)."""
    check_run_folder(out_dir)
    result = train(log, cfg, progress, out_dir / CHECKPOINT, resume)
    ranks = join(resolve_device(cfg.train.device))
    if ranks.main:                                                   # under torchrun, rank 0 alone writes
        write_run(result, out_dir)
    barrier(ranks)
    return result


def interrupted(out_dir: Path) -> tuple[RunConfig, TrainState]:
    """The settings and the last checkpointed state of the interrupted run in `out_dir`."""
    state = load_checkpoint(out_dir / CHECKPOINT)
    return build_run_config(state.extra["config"], str(out_dir / CHECKPOINT)), state
