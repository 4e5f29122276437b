"""Finished runs as trials: a run of one point of the search space, with the search's seed and events, is that
point's trial, read from its metrics.json instead of trained again (e.g. the preset's run of a benchmark, which
on a large log trains for an hour)."""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from seqrec.config import RunConfig
from seqrec.data.interactions import Interactions
from seqrec.errors import ConfigError
from seqrec.runs import METRICS_FILE
from seqrec.settings import build_run_config, with_settings
from seqrec.tuning.space import base_trial, flat_settings, unmet_conditions
from seqrec.tuning.study import MACHINE_SETTINGS, trials_of_settings


@dataclass(frozen=True)
class RunTrial:
    """What a finished run says about its point of the space: the drawn settings, the best validation value of
    the searched metric and each epoch's, the best epoch, the training seconds, and the events it trained on."""

    folder: Path
    params: dict[str, Any]
    value: float
    per_epoch: dict[int, float]
    best_epoch: int | None
    train_seconds: float
    finished: datetime.datetime
    events: str                              # what it read: events_read_as(checksum, source)


def read_run(folder: Path, base: RunConfig, space: Mapping[str, BaseDistribution], metric: str) -> RunTrial:
    """The trial that the run in `folder` is, checked before any data is read: a ConfigError when it is no finished
    run, when a setting other than those `space` samples differs from `base`'s (the seed included), when its value of
    a sampled setting is no point of `space`, or when it holds no validation value of `metric` ('valid/P/M')."""
    where = f"--from-run {folder}"
    path = folder / METRICS_FILE
    if not path.is_file():
        raise ConfigError(f"{where}: no {METRICS_FILE}; give the folder of a finished run")
    try:
        saved = json.loads(path.read_text())
        config = build_run_config(saved["config"], f"{path} config")
        train_seconds, checksum = float(saved["timings"]["train_seconds"]), str(saved["dataset"]["sha256"])
    except (ValueError, KeyError, TypeError) as err:     # JSONDecodeError is a ValueError
        raise ConfigError(f"{where}: {path} is no metrics.json of `seqrec train` ({type(err).__name__}: "
                          f"{err})") from None
    values, outside = base_trial(config, space)
    if outside:
        raise ConfigError(f"{where}: its {outside[0]} is no point of the search space")
    skipped = unmet_conditions(base, values)
    ours = flat_settings(with_settings(base, values | skipped, where).to_dict())
    theirs = flat_settings(config.to_dict())
    differs = next((k for k in sorted(set(ours) | set(theirs))
                    if k not in MACHINE_SETTINGS and ours.get(k) != theirs.get(k)), None)
    if differs is not None:
        raise ConfigError(f"{where}: it was trained with {differs} = {theirs.get(differs)!r}, the search's base has "
                          f"{ours.get(differs)!r}; only the searched settings may differ")
    _, protocol, key = metric.split("/", 2)
    value = saved.get("validation", {}).get(protocol, {}).get(key)
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: it holds no finite validation {protocol} {key} ({value}); the search "
                          f"maximises {metric}")
    per_epoch = {int(r["epoch"]): float(r[metric]) for r in saved.get("history", [])
                 if metric in r and math.isfinite(r[metric])}
    return RunTrial(folder, {k: v for k, v in values.items() if k not in skipped}, float(value), per_epoch,
                    saved.get("best_epoch"), train_seconds,
                    datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC),
                    events_read_as(checksum, saved["dataset"].get("source") or {}))


def events_read_as(checksum: str, source: Mapping[str, Any]) -> str:
    """The source file's sha256 and how it was read (format, events read and kept; not where it lies)."""
    return json.dumps({"sha256": checksum} | {k: v for k, v in source.items() if k != "path"}, sort_keys=True)


def run_worker(folder: Path | str) -> str:
    """The worker a finished run read as a trial is listed as: 'run FOLDER'."""
    return f"run {folder}"


def add_run_trials(study: optuna.Study, log: Interactions, space: Mapping[str, BaseDistribution],
                   runs: Sequence[RunTrial]) -> list[tuple[RunTrial, int]]:
    """Add each run as a finished trial of `study`, unless a trial of its settings is there already (queued,
    running, or finished with a value): its seconds are the run's training, its worker 'run FOLDER'. A run on
    other events than `log`'s is a ConfigError. Returns the runs added, each with its trial's number."""
    added = []
    for run in runs:
        if run.events != (ours := events_read_as(log.checksum, log.source)):
            raise ConfigError(f"--from-run {run.folder}: it trained on other events than the search: {run.events} "
                              f"against {ours}")
        if trials_of_settings(study, run.params):
            continue
        started, worker = run.finished - datetime.timedelta(seconds=run.train_seconds), run_worker(run.folder)
        study.add_trial(FrozenTrial(
            number=-1, trial_id=-1, state=TrialState.COMPLETE, value=run.value, values=None,
            datetime_start=started, datetime_complete=run.finished, params=run.params,
            distributions={name: space[name] for name in run.params}, intermediate_values=run.per_epoch,
            user_attrs={"best_epoch": run.best_epoch, "worker": worker}, system_attrs={}))
        added.append((run, max(t.number for t in study.get_trials(deepcopy=False)
                               if t.user_attrs.get("worker") == worker and t.params == run.params)))
    return added
