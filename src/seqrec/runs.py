"""A run's results: `TrainResult` (whose `to_json` is the metrics.json schema) and the run folder,
OUT/metrics.json beside OUT/bundle/, written together by `write_run` for every command that trains.

While training, OUT/checkpoint/ holds the state after the last finished epoch (`seqrec train --resume
OUT` continues from it); writing the run folder replaces the whole folder, checkpoint included.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from torch import nn

from seqrec import bundle as bundles
from seqrec.atomic import write_folder
from seqrec.config import RunConfig
from seqrec.data.interactions import Interactions
from seqrec.errors import SeqrecError

METRICS_FILE, CHECKPOINT = "metrics.json", "checkpoint"
RUN_ENTRIES = {METRICS_FILE, bundles.BUNDLE_SUBDIR, CHECKPOINT}


@dataclass
class TrainResult:
    """A trained model and everything measured about it."""

    model: nn.Module
    config: RunConfig
    metrics: dict[str, dict[str, float]]
    history: list[dict[str, float]]
    timings: dict[str, float]
    num_parameters: int
    dataset: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, dict[str, float]] = field(default_factory=dict)  # final metrics on the validation cases
    best_epoch: int | None = None       # the epoch whose weights were kept (early stopping), else None
    refit_epochs: int | None = None     # train.refit: epochs of the model trained on training + validation items
    log: Interactions | None = field(default=None, repr=False)    # the training log, for the bundle
    notes: list[str] = field(default_factory=list)  # settings that could not apply, said in words

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "validation": self.validation, "best_epoch": self.best_epoch,
                "refit_epochs": self.refit_epochs,
                "seed": self.config.seed, "config": self.config.to_dict(),
                "model": {"name": self.config.model, "num_parameters": self.num_parameters},
                "dataset": self.dataset, "history": self.history, "timings": self.timings,
                "versions": package_versions(), "notes": self.notes}


def package_versions() -> dict[str, str]:
    names = ("seqrec", "torch", "numpy", "polars")
    return {"python": platform.python_version()} | {name: version(name) for name in names}


def _of_a_run(name: str) -> bool:
    """A run's own entry, or the temporary sibling an interrupted atomic write of one left (seqrec.atomic)."""
    return name in RUN_ENTRIES or any(name.startswith(f".{entry}.{kind}-") for entry in RUN_ENTRIES
                                      for kind in ("tmp", "old"))


def check_run_folder(out_dir: Path) -> None:
    """Refuse, before any training, an OUT that a run folder may not replace: a file, or a folder holding
    anything but a run's own entries (e.g. events.sqlite of `seqrec serve`: a new model must not replay
    the old model's events)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SeqrecError(f"--out {out_dir}: is a file; a run writes a folder (metrics.json and bundle/)")
    foreign = sorted(p.name for p in out_dir.iterdir() if not _of_a_run(p.name)) if out_dir.is_dir() else []
    if foreign:
        raise SeqrecError(f"--out {out_dir}: holds {', '.join(foreign[:5])}, which a run folder does not; a new run "
                          "replaces the whole folder, so move them away or choose another --out")


def write_run(result: TrainResult, out_dir: Path) -> Path:
    """Write OUT/metrics.json and the bundle OUT/bundle together: both are swapped in at once (seqrec.atomic),
    so OUT never holds the metrics of one run beside the bundle of another. Nothing non-finite is written."""
    try:
        text = json.dumps(result.to_json(), indent=2, allow_nan=False)
    except ValueError:
        raise SeqrecError("a metric or setting of this run is NaN or infinite; refusing to write it") from None
    made = bundles.make_bundle(result.model, result.log, result.config, result.metrics)

    def fill(folder: Path) -> None:
        (folder / METRICS_FILE).write_text(text + "\n")
        bundles.write_bundle_files(made, folder / bundles.BUNDLE_SUBDIR)

    return write_folder(out_dir, fill)
