"""Experiments over many runs: train each (config, seed), summarise mean and spread, write tables and a chart.

`run_grid(configs, seeds, log)` is the reusable runner (compare now; ablations and sweeps are grids
too); `write_comparison` turns its table into compare.json, compare.md and compare.png.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqrec.config import RunConfig
from seqrec.data.interactions import Interactions
from seqrec.errors import ConfigError, SeqrecError
from seqrec.evaluation.protocols import PROTOCOLS, metric_key
from seqrec.pipeline import interrupted, run
from seqrec.runs import CHECKPOINT, METRICS_FILE, TrainResult
from seqrec.settings import build_run_config, preset_for, resolve_run_config
from seqrec.training import TrainState


@dataclass(frozen=True)
class RunRecord:
    """One trained (config, seed): test metrics by protocol, training seconds, parameters, best epoch, and the
    run's settings (RunConfig.to_dict(), seed included), by which a later grid knows the record for its own."""

    label: str
    seed: int
    metrics: dict[str, dict[str, float]]
    train_seconds: float
    num_parameters: int
    best_epoch: int | None = None
    config: dict[str, Any] | None = None


@dataclass
class GridTable:
    """The records of a grid, in run order, and the protocol whose metrics the summary shows first; `waiting`
    keeps finished runs of models left out of the table until their other seeds finish (no summary)."""

    protocol: str
    num_sampled: int
    records: list[RunRecord] = field(default_factory=list)
    waiting: list[RunRecord] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(r.label for r in self.records))

    def headline(self) -> tuple[str, str]:
        first, second = PROTOCOLS[self.protocol].headline
        return metric_key(self.protocol, first, self.num_sampled), metric_key(self.protocol, second, self.num_sampled)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per label: mean and sample standard deviation (ddof 1; 0 for one seed) of every metric and of the
        training seconds, the parameter count and the seeds."""
        out: dict[str, dict[str, Any]] = {}
        for label in self.labels:
            runs = [r for r in self.records if r.label == label]
            metrics = {p: {name: mean_std([r.metrics[p][name] for r in runs]) for name in runs[0].metrics[p]}
                       for p in runs[0].metrics}
            out[label] = {"metrics": metrics, "train_seconds": mean_std([r.train_seconds for r in runs]),
                          "num_parameters": runs[0].num_parameters, "seeds": [r.seed for r in runs]}
        return out

    def to_json(self) -> dict[str, Any]:
        waiting = {"waiting": [dataclasses.asdict(r) for r in self.waiting]} if self.waiting else {}
        return {"protocol": self.protocol, "headline": list(self.headline()), "summary": self.summary(),
                "runs": [dataclasses.asdict(r) for r in self.records]} | waiting


def mean_std(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"--seeds expects comma separated integers, e.g. 0,1,2; got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds expects distinct non-negative integers, got {text!r}")
    return seeds


def parse_model_specs(text: str, overrides: Mapping[str, Any] | None = None) -> dict[str, RunConfig]:
    """'caser:d2l,sasrec,runs/my.toml' -> {label: RunConfig}: MODEL:PRESET, MODEL (its own preset when one of that
    name exists for it, else defaults), or a TOML config file. `overrides` (flags) apply to every one."""
    overrides = dict(overrides or {})
    configs: dict[str, RunConfig] = {}
    for spec in (s.strip() for s in text.split(",") if s.strip()):
        if spec.endswith(".toml"):
            label, cfg = Path(spec).stem, resolve_run_config(None, Path(spec), overrides)
        else:
            model, _, preset = spec.partition(":")
            label, cfg = spec, resolve_run_config(preset or preset_for(model), None, overrides | {"model": model})
        if label in configs:
            raise ConfigError(f"--models names {label!r} twice")
        configs[label] = cfg
    if not configs:
        raise ConfigError("--models names no model")
    first = next(iter(configs.values()))
    for label, cfg in configs.items():
        if cfg.data != first.data or cfg.eval != first.eval:
            raise ConfigError(f"{label}: every model of a comparison must use the same data and [eval] settings")
    return configs


def run_folder(out_dir: Path, label: str, seed: int) -> Path:
    """OUT/runs/LABEL/seed-N, the label made safe as a folder name ('caser:d2l' -> 'caser-d2l')."""
    return out_dir / "runs" / (re.sub(r"[^A-Za-z0-9_.=+-]+", "-", label).strip("-") or "run") / f"seed-{seed}"


def same_settings(saved: Mapping[str, Any] | None, cfg: RunConfig) -> bool:
    """Whether settings saved by an earlier run are `cfg`'s, seed included (a setting added since then counts with
    its default; settings with one that no longer exists are not)."""
    try:
        return saved is not None and build_run_config(saved) == cfg
    except ConfigError:
        return False


def finished_record(folder: Path, cfg: RunConfig, label: str) -> RunRecord | None:
    """The record of the run in `folder` when its metrics.json was written with `cfg`'s settings."""
    path = folder / METRICS_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    if not same_settings(saved["config"], cfg):
        return None
    return RunRecord(label, cfg.seed, saved["metrics"], saved["timings"]["train_seconds"],
                     saved["model"]["num_parameters"], saved["best_epoch"], cfg.to_dict())


def recorded_run(out_dir: Path, label: str, cfg: RunConfig, stem: str = "compare") -> RunRecord | None:
    """The finished run of `cfg` under OUT: its run folder's record, else the record OUT/STEM.json keeps of it,
    in its table or waiting (a comparison's table outlives its run folders, e.g. in a fresh checkout where only
    the table was kept)."""
    record = finished_record(run_folder(out_dir, label, cfg.seed), cfg, label)
    table = out_dir / f"{stem}.json"
    if record is not None or not table.is_file():
        return record
    saved = json.loads(table.read_text())
    kept = (RunRecord(**run) for run in saved["runs"] + saved.get("waiting", []))
    return next((run for run in kept if run.label == label and run.seed == cfg.seed
                 and same_settings(run.config, cfg)), None)


def interrupted_state(folder: Path, cfg: RunConfig) -> TrainState | None:
    """The last checkpoint in `folder` when it belongs to an interrupted run of `cfg` (seed included), to continue
    from; None (start afresh) when there is none, it cannot be read, or it was written with other settings."""
    if not (folder / CHECKPOINT).is_dir():
        return None
    try:
        saved, state = interrupted(folder)
    except SeqrecError:
        return None
    return state if saved == cfg else None


def run_grid(configs: Mapping[str, RunConfig], seeds: Sequence[int], log: Interactions, out_dir: Path,
             progress: bool | None = None, on_run: Callable[[str, int, TrainResult], None] | None = None,
             reuse: bool = False, stem: str = "compare") -> GridTable:
    """Train and evaluate every config with every seed on `log` (the seed replaces each config's seed); each run
    writes its folder (metrics.json and bundle) under `run_folder(out_dir, label, seed)`. With `reuse`, a
    finished run of the same settings is read instead (`recorded_run`: its folder, else OUT/STEM.json), and an
    interrupted run of the same settings continues from its last checkpoint (an interrupted grid resumes where it
    stopped)."""
    first = next(iter(configs.values()))
    table = GridTable(first.eval.protocols[0], first.eval.num_sampled)
    for label, cfg in configs.items():
        for seed in seeds:
            folder, seeded = run_folder(out_dir, label, seed), dataclasses.replace(cfg, seed=seed)
            record = recorded_run(out_dir, label, seeded, stem) if reuse else None
            if record is not None:
                table.records.append(record)
                continue
            result = run(log, seeded, folder, progress, interrupted_state(folder, seeded) if reuse else None)
            table.records.append(RunRecord(label, seed, result.metrics, result.timings["train_seconds"],
                                           result.num_parameters, result.best_epoch, seeded.to_dict()))
            if on_run is not None:
                on_run(label, seed, result)
    return table


def _cell(stat: dict[str, float], digits: int = 4) -> str:
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def markdown_table(table: GridTable) -> str:
    """Mean ± sample std over seeds of every metric of the table's protocol (hit@k aliases of hr@k left out)."""
    summary = table.summary()
    names = [n for n in summary[table.labels[0]]["metrics"][table.protocol] if not n.startswith("hit@")]
    names = sorted(names, key=lambda n: n not in table.headline())
    head = ["model", *names, "train s", "parameters", "seeds"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, s in summary.items():
        cells = [label, *(_cell(s["metrics"][table.protocol][n]) for n in names), _cell(s["train_seconds"], 1),
                 f"{s['num_parameters']:,}", ",".join(map(str, s["seeds"]))]
        rows.append("| " + " | ".join(cells) + " |")
    return f"Protocol `{table.protocol}`: mean ± sample standard deviation over seeds.\n\n" + "\n".join(rows) + "\n"


def plot_comparison(table: GridTable, path: Path) -> Path:
    """Bar chart of the protocol's two headline metrics per model, with ± std error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, metrics = table.summary(), table.headline()
    labels, width = table.labels, 0.8 / len(table.headline())
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 2), 3.5))
    x = np.arange(len(labels))
    for i, name in enumerate(metrics):
        stats = [summary[label]["metrics"][table.protocol][name] for label in labels]
        ax.bar(x + (i - (len(metrics) - 1) / 2) * width, [s["mean"] for s in stats], width,
               yerr=[s["std"] for s in stats], capsize=3, label=name)
    ax.set_xticks(x, labels, rotation=20 if len(labels) > 4 else 0)
    ax.set_ylabel("test metric (mean ± std over seeds)")
    ax.set_title(f"protocol {table.protocol}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_comparison(table: GridTable, out_dir: Path, stem: str = "compare",
                     plot: Callable[[GridTable, Path], Path] = plot_comparison, note: str = "") -> list[Path]:
    """out_dir/STEM.json (summary and every run), STEM.md (the table, then `note`) and STEM.png (`plot`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(table.to_json() | ({"note": note} if note else {}), indent=2) + "\n")
    md_path.write_text(markdown_table(table) + (f"\n{note}\n" if note else ""))
    return [json_path, md_path, plot(table, out_dir / f"{stem}.png")]

