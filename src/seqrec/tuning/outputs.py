"""What a search writes: the trials as CSV and Markdown, the history and importance plots, best.toml."""

from __future__ import annotations

import csv
import io
import json
import os
import tomllib
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from seqrec.config import RunConfig
from seqrec.errors import SeqrecError
from seqrec.settings import build_run_config


def duration(seconds: float) -> str:
    """12.3 -> '12.3 s'; 200 -> '3m 20s'; 7300 -> '2h 1m'."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60}m"


def printed(params: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as the trial lines print them: floats to 4 significant digits."""
    return {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in params.items()}


def params_text(trial: FrozenTrial) -> str:
    return " ".join(f"{k}={v}" for k, v in printed(trial.params).items())


# a failed trial with no error of its own: its process stopped while it ran, killed (then a later process failed it
# for want of a heartbeat) or cut before seqrec recorded why, so when it really ended is not known
UNSEEN_END = "its process stopped while it ran, with no word of why; when is not known"


def failure(trial: FrozenTrial) -> str:
    """Why a failed trial failed: the error it recorded, else UNSEEN_END."""
    return trial.user_attrs.get("error", UNSEEN_END)


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial of the study: number, state, value, best epoch, seconds (blank when its end is unknown),
    worker, the parameters, then why it failed."""
    def unseen(t: FrozenTrial) -> bool:
        return t.state == TrialState.FAIL and "error" not in t.user_attrs

    names = list(dict.fromkeys(name for t in study.trials for name in t.params))
    return [{"number": t.number, "state": t.state.name.lower(), "value": t.value, "best_epoch":
             t.user_attrs.get("best_epoch", t.last_step),
             "seconds": t.duration.total_seconds() if t.duration and not unseen(t) else None,
             "worker": t.user_attrs.get("worker")} | {n: t.params.get(n) for n in names}
            | {"error": failure(t) if t.state == TrialState.FAIL else None} for t in study.trials]


def _cell(value: Any) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def write_trials(study: optuna.Study, out_dir: Path, metric: str) -> list[Path]:
    """OUT/trials.csv and OUT/trials.md: `trial_rows` as a CSV file and as a Markdown table."""
    rows = trial_rows(study)
    columns = list(rows[0]) if rows else ["number", "state", "value"]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    table += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    intro = (f"Study `{study.study_name}`: {len(rows)} trials; value: the trial's best {metric} (pruned: its last "
             "epoch's).\n\n")
    return [write_text(out_dir / "trials.csv", text.getvalue()),
            write_text(out_dir / "trials.md", intro + "\n".join(table))]


def write_text(path: Path, text: str) -> Path:
    """Write through a temporary file: processes finishing together never leave a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text if text.endswith("\n") else text + "\n")
    os.replace(tmp, path)
    return path


def _figure(path: Path, draw: Callable[[Any], None]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    draw(ax)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")       # long parameter names must not push labels out
    plt.close(fig)
    os.replace(tmp, path)
    return [path]


def plot_history(study: optuna.Study, path: Path, metric: str) -> list[Path]:
    """Each finished trial's value against its number, the best so far, and pruned trials at their last value."""
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED and t.intermediate_values]

    def draw(ax: Any) -> None:
        ax.scatter([t.number for t in done], [t.value for t in done], s=14, label="complete")
        ax.scatter([t.number for t in pruned], [t.intermediate_values[t.last_step] for t in pruned], marker="x",
                   color="grey", label="pruned (last epoch)")
        ax.step([t.number for t in done], np.maximum.accumulate([t.value for t in done]) if done else [],
                where="post", color="C1", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(metric)
        ax.set_title(f"study {study.study_name}: optimisation history")
        ax.legend(fontsize=8)

    return _figure(path, draw)


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's PED-ANOVA importance (it needs no scikit-learn) of each setting that every finished trial drew
    and that took more than one value among them (a setting that never changed explains nothing, yet PED-ANOVA
    gives it a share when there are few trials); empty before two trials have finished."""
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    varied = [name for name in (complete[0].params if complete else ()) if all(name in t.params for t in complete)
              and len({repr(t.params[name]) for t in complete}) > 1]
    if not varied:
        return {}
    with warnings.catch_warnings():               # "too few trials": the title says how many there were
        warnings.simplefilter("ignore")
        return optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), params=varied)


def plot_importance(study: optuna.Study, path: Path, metric: str) -> list[Path]:
    """param_importances as bars; nothing when there are none."""
    importances = param_importances(study)
    if not importances:
        return []
    names = list(importances)[::-1]

    def draw(ax: Any) -> None:
        ax.barh(names, [importances[n] for n in names])
        ax.set_xlabel(f"importance for {metric} (PED-ANOVA)")
        ax.set_title(f"study {study.study_name}: {len(study.trials)} trials")

    return _figure(path, draw)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))                # a JSON string is a TOML basic string


def to_toml(settings: Mapping[str, Any]) -> str:
    """Nested settings as TOML: top-level values, then one [table] per mapping; None (unset) is left out."""
    top = [f"{k} = {_toml_value(v)}" for k, v in settings.items() if v is not None and not isinstance(v, Mapping)]
    tables = [f"\n[{k}]\n" + "".join(f"{n} = {_toml_value(x)}\n" for n, x in v.items() if x is not None)
              for k, v in settings.items() if isinstance(v, Mapping)]
    return "\n".join(top) + "\n" + "".join(tables)


def write_toml(cfg: RunConfig, path: Path, comment: str) -> Path:
    """`cfg` as a TOML file that `seqrec train --config` takes; refuses to write one that reads back different."""
    text = f"# {comment}\n" + to_toml(cfg.to_dict())
    if build_run_config(tomllib.loads(text), str(path)) != cfg:
        raise SeqrecError(f"{path}: the settings do not survive a TOML round trip; not written")
    return write_text(path, text)


