"""The study several processes share: options, the trial-seeded sampler, opening or joining a stored study."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from seqrec.config import RunConfig
from seqrec.data.interactions import Interactions
from seqrec.errors import ConfigError
from seqrec.models.base import check_config
from seqrec.models.registry import model_spec
from seqrec.tuning.space import flat_settings

MACHINE_SETTINGS = ("data.data_dir", "data.path", "train.device")   # may differ between processes of one study
WORKER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class TuneOptions:
    """How long and where to search.

    trials: trials this process runs (0: none, only the report of the stored study, e.g. once its processes were
    stopped); timeout: seconds after which no trial starts and one still training is cut at the end of its epoch
    (either or both).
    storage: an Optuna storage URL (None: sqlite:///OUT/study.sqlite); study: its name (None: the model's).
    params: the search-space entries to sample (empty: all but `fixed`, e.g. the settings given as flags, which
    keep the base's value). prune: Optuna's MedianPruner on the per-epoch validation values, once `prune_after`
    trials have finished, from epoch prune_warmup + 1 on.
    enqueue: settings ({dotted setting: value}) tried first, e.g. a known good configuration.
    from_runs: folders of finished runs of points of the space (seqrec.tuning.runs): each is its point's trial,
    read, not trained again.
    final: train the best settings once more into OUT/best, the one evaluation of the test cases.
    """

    trials: int | None = None
    timeout: float | None = None
    storage: str | None = None
    study: str | None = None
    params: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    prune: bool = True
    prune_after: int = 5
    prune_warmup: int = 1
    enqueue: tuple[Mapping[str, Any], ...] = ()
    from_runs: tuple[Path, ...] = ()
    final: bool = True

    def __post_init__(self) -> None:
        check_config([
            (self.trials is not None or self.timeout is not None, "say how long to search: --trials N, --timeout 30m, "
                                                                  "or both"),
            (self.trials is None or self.trials >= 0, f"--trials must be at least 0, got {self.trials}"),
            (self.timeout is None or self.timeout > 0, f"--timeout must be positive, got {self.timeout}"),
            (self.prune_after >= 0, f"--prune-after must be >= 0, got {self.prune_after}"),
            (self.prune_warmup >= 0, f"--prune-warmup must be >= 0, got {self.prune_warmup}")])


class TrialSeededTPE(optuna.samplers.BaseSampler):
    """TPE whose random draws for trial n come from the seed (seed, n) alone.

    One process repeats its search exactly; processes sharing a study get distinct trial numbers from
    the storage and so never draw the same candidates (one shared seed would make them draw alike).
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._current: tuple[int, optuna.samplers.TPESampler] | None = None

    def _tpe(self, trial: FrozenTrial) -> optuna.samplers.TPESampler:
        if self._current is None or self._current[0] != trial.number:
            seed = int(np.random.SeedSequence([self.seed, trial.number]).generate_state(1)[0])
            self._current = (trial.number, optuna.samplers.TPESampler(seed=seed))
        return self._current[1]

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._tpe(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._tpe(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._tpe(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._tpe(trial).before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._tpe(trial).after_trial(study, trial, state, values)


def trials_of_settings(study: optuna.Study, params: Mapping[str, Any]) -> list[FrozenTrial]:
    """The trials of `params` (queued with them, or drawn) that are queued, running or finished with a value."""
    return [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL
            and t.system_attrs.get("fixed_params", t.params) == dict(params)]


def _identity(base: RunConfig, log: Interactions) -> dict[str, Any]:
    """What every process of one study must share: the settings (less machine-local ones) and the events."""
    digest = hashlib.sha256()
    for column in (log.users, log.items, log.times):
        digest.update(np.ascontiguousarray(column).tobytes())
    settings = {k: v for k, v in flat_settings(base.to_dict()).items() if k not in MACHINE_SETTINGS}
    return json.loads(json.dumps({"settings": settings, "events_sha256": digest.hexdigest()}))


def _defaults(model: str) -> dict[str, Any]:
    """Every setting's default for `model`, keyed as in _identity: what a setting added to seqrec after a study
    started meant for that study (new settings default to the earlier behaviour)."""
    defaults = RunConfig(model, model_spec(model).config()).to_dict()
    return json.loads(json.dumps({"settings": flat_settings(defaults)}))


def redacted(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_study(base: RunConfig, log: Interactions, out_dir: Path, options: TuneOptions) -> optuna.Study:
    """Create the study, or join it (load_if_exists) when it was started with the same settings and events."""
    from sqlalchemy.exc import SQLAlchemyError

    url = options.storage or f"sqlite:///{(out_dir / 'study.sqlite').resolve()}"
    # SQLite: wait up to a minute for another process's write instead of failing on a locked file.
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=options.prune_after,
                                          n_warmup_steps=options.prune_warmup + 1)     # steps are epochs 1, 2, ...
              if options.prune else optuna.pruners.NopPruner())
    name = options.study or base.model
    try:
        # heartbeats: the running trials of a process that died are failed, not left running forever
        storage = optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=60, grace_period=180)
        study = optuna.create_study(storage=storage, study_name=name, sampler=TrialSeededTPE(base.seed),
                                    pruner=pruner, direction="maximize", load_if_exists=True)
    except (ImportError, ValueError, SQLAlchemyError) as err:
        raise ConfigError(f"--storage {redacted(url)}: cannot open it ({str(err).splitlines()[0]})") from None
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ConfigError(f"study {name} minimises its objective; seqrec tune maximises a metric: use another --study")
    identity, stored = _identity(base, log), study.user_attrs.get("identity")
    if stored is None:
        study.set_user_attr("identity", identity)
    elif stored != identity:
        ours, theirs, defaults = flat_settings(identity), flat_settings(stored), flat_settings(_defaults(base.model))
        what = next((k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)
                     and (k in theirs or ours[k] != defaults.get(k))), None)     # a newer setting at its default: same
        if what is None:
            return study
        raise ConfigError(f"study {name} was started with {what} = {theirs.get(what)!r}, not {ours.get(what)!r}; "
                          "join it with the same settings and data, or use another --study")
    return study


