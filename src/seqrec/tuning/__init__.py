"""Hyper-parameter search on validation data: Optuna TPE over a model's declared search space, with pruning.

A trial is an ordinary RunConfig: the base (preset, --config file, flags) with the sampled settings laid
over it (`seqrec.settings.with_settings`). It trains with early stopping on the tuned metric, reports each
epoch's validation value to the pruner through `pipeline.train`'s `search` hook (a pruned trial raises
through the training loop), and never evaluates the test cases; its value is its best validation value.
After the search the best trial's settings become OUT/best.toml and are trained once more, as an ordinary
run, into OUT/best: the only time the test cases are read.

Studies live in an Optuna storage (default sqlite:///OUT/study.sqlite). Several processes or machines may
tune one study at once: the storage numbers the trials, and trial n draws its random numbers from
(seed, n), so one process repeats its search exactly and two processes never draw the same candidates.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from seqrec.config import RunConfig
from seqrec.data.interactions import Interactions
from seqrec.errors import SeqrecError
from seqrec.evaluation.protocols import metric_key
from seqrec.pipeline import run, train
from seqrec.runs import TrainResult, check_run_folder
from seqrec.settings import with_settings
from seqrec.tuning.interrupts import SearchInterrupts
from seqrec.tuning.outputs import (
    duration,
    failure,
    params_text,
    plot_history,
    plot_importance,
    printed,
    to_toml,
    trial_rows,
    write_text,
    write_toml,
    write_trials,
)
from seqrec.tuning.runs import RunTrial, add_run_trials, read_run, run_worker
from seqrec.tuning.space import (
    VALIDATED_SPLITS,
    base_trial,
    check_conditions,
    distribution,
    own_values,
    search_base,
    search_space,
    suggest,
    unmet_conditions,
)
from seqrec.tuning.study import WORKER, TrialSeededTPE, TuneOptions, open_study, redacted, trials_of_settings


def check_out(out_dir: Path, final: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise SeqrecError(f"--out {out_dir}: is a file; tuning writes a folder")
    if final:
        check_run_folder(out_dir / "best")


@dataclass
class TuneResult:
    """A finished search: the study (every process's trials), the best trial, its settings, the final run."""

    study: optuna.Study
    best: FrozenTrial
    best_config: RunConfig
    metric: str                              # 'valid/PROTOCOL/METRIC'
    trials_here: int
    search_seconds: float
    final: TrainResult | None = None
    final_seconds: float = 0.0
    paths: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        counts = {word: sum(t.state == s for t in self.study.trials)
                  for s, word in ((TrialState.COMPLETE, "complete"), (TrialState.PRUNED, "pruned"),
                                  (TrialState.FAIL, "failed"))}
        lines = [f"tuned {self.best_config.model} in {duration(self.search_seconds + self.final_seconds)} (search "
                 f"{duration(self.search_seconds)}, final run {duration(self.final_seconds)}): {self.trials_here} "
                 f"trials here; study {self.study.study_name}: " + ", ".join(f"{n} {s}" for s, n in counts.items()),
                 f"best trial {self.best.number}: {self.metric} {self.best.value:.4f} with {params_text(self.best)}"]
        if self.final is not None:
            cfg = self.best_config
            primary = cfg.eval.protocols[0]
            key = metric_key(primary, cfg.train.early_stopping_metric, cfg.eval.num_sampled)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in self.final.metrics[primary].items()
                              if ("@10" in k and not k.startswith("hit@")) or k in ("map", "mrr"))
            lines.append(f"final run (seed {cfg.seed}): valid {key} "
                         f"{self.final.validation[primary][key]:.4f}; test {shown}")
        return "\n".join([*lines, "wrote " + ", ".join(map(str, self.paths))])


def _best(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:                       # no trial has finished with a value yet
        return None


def _queue(study: optuna.Study, params: Mapping[str, Any]) -> None:
    """Queue a trial of `params` unless one is queued, running or has finished with a value (one that failed, e.g.
    cut when its process was stopped, is tried again). Processes that start together can each queue it (the check
    and the insert are not one transaction): of such copies the first stays, and each later one still waiting is
    claimed (so no other process starts it, and one that has started it keeps it) and failed."""
    if not trials_of_settings(study, params):
        study.enqueue_trial(dict(params))
    first, *copies = trials_of_settings(study, params)
    storage = study._storage                   # claiming a waiting trial is a storage call Optuna's API lacks
    for copy in copies:
        if copy.state == TrialState.WAITING and storage.set_trial_state_values(copy._trial_id, TrialState.RUNNING):
            why = f"a copy of trial {first.number} queued by another process"
            storage.set_trial_user_attr(copy._trial_id, "error", why)
            storage.set_trial_state_values(copy._trial_id, TrialState.FAIL)


def _repeated(study: optuna.Study, trial: Trial) -> FrozenTrial | None:
    """The earlier trial, queued, running or finished with a value, whose drawn settings equal `trial`'s as the trial
    lines print them (floats to 4 significant digits). Trial n's first draws depend on (seed, n) alone, so a preset
    copied from such a line is drawn again by that trial number of any later search with the same seed."""
    drawn = printed(trial.params)
    return next((t for t in study.get_trials(deepcopy=False) if t.number != trial.number and t.state != TrialState.FAIL
                 and printed(t.params or t.system_attrs.get("fixed_params", {})) == drawn), None)


def _trial_line(trial: FrozenTrial, study: optuna.Study, metric: str, count: int, options: TuneOptions,
                elapsed: float) -> str:
    """'trial 7 [3 of 20 here, 2m 5s of 30m 0s]: valid/loo-full/ndcg@10 0.1432 (epoch 6); best ...; 4.1 s; ...'."""
    where = f"{count}{f' of {options.trials}' if options.trials else ''} here, {duration(elapsed)}"
    where += f" of {duration(options.timeout)}" if options.timeout else ""
    if trial.state == TrialState.COMPLETE:
        epoch = trial.user_attrs.get("best_epoch")            # 0: a counting model, which has no epochs
        outcome = f"{metric} {trial.value:.4f}" + (f" (epoch {epoch})" if epoch else "")
    elif trial.state == TrialState.PRUNED:
        step = trial.last_step
        outcome = f"pruned at epoch {step} ({metric} {trial.intermediate_values.get(step, math.nan):.4f})"
    else:
        outcome = f"failed: {failure(trial)}"
    best = _best(study)
    best_text = f"; best {best.value:.4f} (trial {best.number})" if best is not None else ""
    seconds = trial.duration.total_seconds() if trial.duration is not None else math.nan
    return f"trial {trial.number} [{where}]: {outcome}{best_text}; {seconds:.1f} s; {params_text(trial)}"


def tune(log: Interactions, base: RunConfig, out_dir: Path, options: TuneOptions, progress: bool | None = None,
         echo: Callable[[str], None] = lambda line: print(line, flush=True)) -> TuneResult:
    """Search `base`'s model settings on `log`'s validation cases; write OUT/best.toml, OUT/trials.csv and .md,
    OUT/history.png and OUT/importance.png, OUT/tune.json, and (options.final) the best run in OUT/best.

    Every trial trains with the run seed; `echo` gets one line per finished trial of this process. Once
    options.timeout has passed no trial starts, and a trial still training is cut (failed) at the end of its epoch.
    """
    base = search_base(base)
    space = search_space(base.model, options.params, options.fixed)
    check_conditions(base, space)
    metric = searched_metric(base)
    runs = [read_run(folder, base, space, metric) for folder in options.from_runs]
    check_out(out_dir, options.final)
    out_dir.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)       # our own line per trial replaces Optuna's log
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = open_study(base, log, out_dir, options)
    optuna.storages.fail_stale_trials(study)                   # trials of processes that died: failed, not running
    for known, number in add_run_trials(study, log, space, runs):
        record_sitting(study, 1, known.train_seconds, known)
        echo(f"trial {number}: read from the finished run {known.folder}: {metric} {known.value:.4f}")
    for params in options.enqueue if options.trials != 0 else ():
        _queue(study, params)
    _, primary, key = metric.split("/", 2)
    interrupts = SearchInterrupts(study)
    started, count = time.perf_counter(), 0

    def out_of_time() -> bool:
        return options.timeout is not None and time.perf_counter() - started >= options.timeout

    def objective(trial: Trial) -> float:
        trial.set_user_attr("worker", WORKER)

        def report(epoch: int, value: float) -> None:
            with interrupts.held():
                trial.report(value, epoch)
                pruned = trial.should_prune()
            if pruned:
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")
            if out_of_time():
                raise SeqrecError(f"cut at epoch {epoch} ({metric} {value:.4f}): the search's --timeout of "
                                  f"{duration(options.timeout)} had passed")

        try:
            settings = suggest(trial, space, base)
            if (earlier := _repeated(study, trial)) is not None:
                raise SeqrecError(f"repeats trial {earlier.number} (same settings to 4 significant digits): not run")
            cfg = with_settings(base, settings, f"trial {trial.number}")
            with interrupts.training():
                result = train(log, cfg, progress, search=report)
            value = result.validation[primary][key]
            if not math.isfinite(value):
                raise SeqrecError(f"{metric} is {value}: no finite value")
        except SeqrecError as err:                  # bad combination, divergence: this trial fails, the search goes on
            trial.set_user_attr("error", str(err))
            raise
        except KeyboardInterrupt:                   # a signal cut it (a second one now only stops the study)
            trial.set_user_attr("error", f"cut by {interrupts.received or 'KeyboardInterrupt'}")
            raise
        trial.set_user_attr("best_epoch", result.best_epoch)
        return value

    def finished(study: optuna.Study, trial: FrozenTrial) -> None:
        nonlocal count
        count += 1
        echo(_trial_line(trial, study, metric, count, options, time.perf_counter() - started))
        if out_of_time():
            study.stop()

    # a trial cut by a signal raises KeyboardInterrupt out of the search, once Optuna has marked it failed
    with contextlib.suppress(KeyboardInterrupt), interrupts.installed():
        if options.trials != 0:
            study.optimize(objective, n_trials=options.trials, catch=(SeqrecError,), callbacks=[finished])
    if interrupts.received is not None:
        echo(f"interrupted ({interrupts.received}): writing the results of the trials so far")
    searched = time.perf_counter() - started
    if count or interrupts.received is not None:             # a sitting whose only trial was cut took time too
        record_sitting(study, count, searched)
    paths = write_trials(study, out_dir, metric) + plot_history(study, out_dir / "history.png", metric)
    paths += plot_importance(study, out_dir / "importance.png", metric)
    best = _best(study)
    if best is None:
        raise SeqrecError(f"no trial of study {study.study_name} has finished with a value; see {paths[0]}")
    best_config = with_settings(base, best.params | unmet_conditions(base, best.params), f"trial {best.number}")
    result = TuneResult(study, best, best_config, metric, count, searched)
    paths.append(write_toml(best_config, out_dir / "best.toml",
                            f"seqrec tune: best trial {best.number} of study {study.study_name}, {metric} = "
                            f"{best.value!r} (seed {best_config.seed}); `seqrec train --config` this file repeats it"))
    if options.final:
        final_started = time.perf_counter()
        result.final = run(log, best_config, out_dir / "best", progress)
        result.final_seconds = time.perf_counter() - final_started
        paths.append(out_dir / "best")
    result.paths = [*paths, write_summary(result, out_dir / "tune.json", options)]
    return result


SITTING = "sitting "           # the prefix of the study attributes that record its sittings


def record_sitting(study: optuna.Study, trials: int, seconds: float, known: RunTrial | None = None) -> None:
    """Keep a process's sitting (trials finished here, seconds of search) in the study itself, under a key of its
    own: processes that finish together, or on other machines, cannot overwrite each other's. A finished run read
    as a trial is a sitting of its own: one trial, its training seconds, and 'run': its folder."""
    ended = datetime.datetime.now(datetime.UTC) if known is None else known.finished
    started = (ended - datetime.timedelta(seconds=seconds)).isoformat()
    study.set_user_attr(f"{SITTING}{started} {WORKER}", {"trials": trials, "seconds": seconds, "started": started}
                        | ({} if known is None else {"run": str(known.folder)}))


def searched_metric(base: RunConfig) -> str:
    """'valid/PROTOCOL/METRIC': the validation value a search of `base` maximises."""
    primary = base.eval.protocols[0]
    return f"valid/{primary}/{metric_key(primary, base.train.early_stopping_metric, base.eval.num_sampled)}"


def sittings_of(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The sittings a tune.json lists, [{'trials': N, 'seconds': S}, ...]; one written before sittings were
    recorded holds a single sitting."""
    return summary.get("sittings", [{"trials": summary["trials"]["here"], "seconds": summary["seconds"]["search"]}])


def worker_sittings(study: optuna.Study, recorded: set[str]) -> list[dict[str, Any]]:
    """The sittings of the processes of a study that recorded none of their own search (e.g. stopped from outside;
    `recorded`: the workers that did), one per process, read from its trials that ended with a value or a reason
    (a cut or failed one took time too; one failed for want of a heartbeat has no known end): the trials that
    finished with a value, the seconds from its first start to its last end, and when it started."""
    valued = (TrialState.COMPLETE, TrialState.PRUNED)
    ended = sorted((t for t in study.trials if t.datetime_start and t.datetime_complete
                    and (t.state in valued or "error" in t.user_attrs)
                    and t.user_attrs.get("worker") not in recorded), key=lambda t: t.datetime_start)
    workers = dict.fromkeys(t.user_attrs.get("worker") for t in ended)
    return [{"trials": sum(t.state in valued for t in mine),
             "seconds": (max(t.datetime_complete for t in mine) - mine[0].datetime_start).total_seconds(),
             "started": mine[0].datetime_start.astimezone(datetime.UTC).isoformat()}
            for mine in ([t for t in ended if t.user_attrs.get("worker") == worker] for worker in workers)]


def study_sittings(study: optuna.Study, earlier: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every sitting of the study: those that an earlier tune.json of it lists from before sittings were kept in
    the study (they have no 'started' and name no process, so nothing is read from the trials beside them), then,
    in the order they started, those the study keeps and one per process that kept none of its search (stopped
    from outside), read from its trials. A finished run read as a trial is a kept sitting of its own."""
    before = [s for s in sittings_of(earlier) if "started" not in s] if earlier.get("study") == study.study_name else []
    keys = sorted(key for key in study.user_attrs if key.startswith(SITTING))
    kept = [study.user_attrs[key] for key in keys]
    if before:
        return before + kept
    recorded = {key.rsplit(" ", 1)[1] for key, sitting in zip(keys, kept, strict=True) if "run" not in sitting}
    read = {run_worker(sitting["run"]) for sitting in kept if "run" in sitting}
    return sorted(kept + worker_sittings(study, recorded | read), key=lambda sitting: sitting["started"])


def write_summary(result: TuneResult, path: Path, options: TuneOptions) -> Path:
    """OUT/tune.json: the study, the best trial, the trial counts, the seconds, the final run's metrics, and the
    sittings (trials, search seconds and start of each process that searched this study, in turn: `study_sittings`;
    a report-only pass adds none)."""
    best, final = result.best, result.final
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    summary = {"study": result.study.study_name, "storage": redacted(options.storage) if options.storage else None,
               "metric": result.metric, "seed": result.best_config.seed,
               "best": {"number": best.number, "value": best.value, "params": best.params,
                        "best_epoch": best.user_attrs.get("best_epoch")},
               "trials": {"here": result.trials_here} | {s.name.lower(): sum(t.state == s for t in result.study.trials)
                                                         for s in TrialState},
               "seconds": {"search": result.search_seconds, "final": result.final_seconds},
               "final": None if final is None else {"test": final.metrics, "validation": final.validation},
               "sittings": study_sittings(result.study, earlier)}
    return write_text(path, json.dumps(summary, indent=2))


__all__ = ["VALIDATED_SPLITS", "RunTrial", "TrialSeededTPE", "TuneOptions", "TuneResult", "base_trial",
           "check_conditions", "check_out", "distribution", "duration", "open_study", "own_values", "read_run",
           "search_base", "search_space", "searched_metric", "sittings_of", "suggest", "to_toml", "trial_rows", "tune",
           "unmet_conditions", "write_toml"]
