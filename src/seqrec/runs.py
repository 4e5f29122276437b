"""A run's results: `TrainResult` (whose `to_json` is the metrics.json schema) and the run folder,
OUT/metrics.json beside OUT/bundle/, written by `write_run` for every command that trains."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from torch import nn

from seqrec import bundle as bundles
from seqrec.config import RunConfig
from seqrec.data.interactions import Interactions

METRICS_FILE = "metrics.json"


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
    log: Interactions | None = field(default=None, repr=False)    # the training log, for the bundle
    notes: list[str] = field(default_factory=list)  # settings that could not apply, said in words

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "validation": self.validation, "best_epoch": self.best_epoch,
                "seed": self.config.seed, "config": self.config.to_dict(),
                "model": {"name": self.config.model, "num_parameters": self.num_parameters},
                "dataset": self.dataset, "history": self.history, "timings": self.timings,
                "versions": package_versions(), "notes": self.notes}


def package_versions() -> dict[str, str]:
    names = ("seqrec", "torch", "numpy", "polars")
    return {"python": platform.python_version()} | {name: version(name) for name in names}


def write_run(result: TrainResult, out_dir: Path) -> tuple[Path, Path]:
    """Write OUT/metrics.json and the bundle OUT/bundle (atomically; see seqrec.bundle); returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = out_dir / METRICS_FILE
    metrics.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    made = bundles.make_bundle(result.model, result.log, result.config, result.metrics)
    return metrics, bundles.save_bundle(made, out_dir / bundles.BUNDLE_SUBDIR)
