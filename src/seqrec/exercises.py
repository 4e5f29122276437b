"""The book section's exercises as experiments over seeds: ablation of Caser's parts, sweeps of any
setting (e.g. L), and session-based recommendation. Each is a grid of runs (seqrec.experiments)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from seqrec.config import RunConfig, parse_assignment
from seqrec.errors import ConfigError
from seqrec.experiments import GridTable
from seqrec.settings import with_settings

# Caser with each part removed; the label says what is left.
ABLATIONS: dict[str, dict[str, Any]] = {
    "full (h + v + user)": {},
    "horizontal only (+ user)": {"model_params.num_v_filters": 0},
    "vertical only (+ user)": {"model_params.num_h_filters": 0},
    "user only (no convolution)": {"model_params.num_h_filters": 0, "model_params.num_v_filters": 0},
    "sequence only (no user)": {"model_params.use_user": False},
}


def ablation_configs(base: RunConfig) -> dict[str, RunConfig]:
    """One config per ABLATIONS entry, on top of a Caser config."""
    if base.model != "caser":
        raise ConfigError(f"the ablation removes parts of Caser; got model {base.model!r}")
    return {label: with_settings(base, change, f"ablation {label!r}") for label, change in ABLATIONS.items()}


def component_importance(table: GridTable) -> dict[str, dict[str, float]]:
    """Per headline metric, what removing each part costs (mean over seeds; positive: the part helps).

    horizontal = full - vertical only; vertical = full - horizontal only; user = full - sequence only;
    convolutions = full - user only.
    """
    summary, protocol = table.summary(), table.protocol
    full, *_ = ABLATIONS

    def mean(label: str, metric: str) -> float:
        return summary[label]["metrics"][protocol][metric]["mean"]

    removed = {"horizontal": "vertical only (+ user)", "vertical": "horizontal only (+ user)",
               "user": "sequence only (no user)", "convolutions": "user only (no convolution)"}
    return {metric: {part: mean(full, metric) - mean(label, metric) for part, label in removed.items()}
            for metric in table.headline()}


def importance_sentence(table: GridTable) -> str:
    """Which convolution matters more, and whether the difference exceeds the seed-to-seed spread."""
    metric = table.headline()[0]
    cost = component_importance(table)[metric]
    more, less = sorted(("horizontal", "vertical"), key=lambda part: -cost[part])
    stats = table.summary()
    spread = np.hypot(*(stats[label]["metrics"][table.protocol][metric]["std"]
                        for label in ("vertical only (+ user)", "horizontal only (+ user)")))
    verdict = (f"the {more} convolution matters more" if cost[more] - cost[less] > spread else
               f"the {more} convolution matters more here, but by less than the seed-to-seed spread ({spread:.4f})")
    return (f"Under `{table.protocol}`, removing the {more} convolution costs {cost[more]:+.4f} {metric} and removing "
            f"the {less} one {cost[less]:+.4f}: {verdict}. Removing the user embedding "
            f"costs {cost['user']:+.4f}; removing both convolutions {cost['convolutions']:+.4f}.")


def parse_duration(text: str) -> float:
    """'1800' or '1800s' -> 1800.0; '30m' -> 1800.0; '2h' -> 7200.0; '1d' -> 86400.0."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise ConfigError(f"a duration looks like 1800, 30m, 2h or 1d; got {text!r}") from None
    if seconds <= 0:
        raise ConfigError(f"a duration must be positive, got {text!r}")
    return seconds


def parse_values(text: str) -> list[Any]:
    """'1..10' -> [1, ..., 10]; '0.1,0.2' -> [0.1, 0.2]; values are read as TOML (numbers, booleans, strings)."""
    start, sep, stop = text.partition("..")
    if sep:
        try:
            values = list(range(int(start), int(stop) + 1))
        except ValueError:
            raise ConfigError(f"--values range must be integers like 1..10, got {text!r}") from None
        if not values:
            raise ConfigError(f"--values range {text!r} is empty; write it low..high, e.g. 1..10")
        return values
    values = [parse_assignment(f"v={item.strip()}")[1] for item in text.split(",") if item.strip()]
    if not values:
        raise ConfigError("--values names no value")
    return values


def setting_path(base: RunConfig, param: str) -> str:
    """A bare name ('L', 'lr') becomes its dotted path ('model_params.L', 'train.lr'); dotted paths pass."""
    if "." in param:
        return param
    sections = {"model_params": [f.name for f in dataclasses.fields(base.model_params)]}
    sections |= {name: [f.name for f in dataclasses.fields(getattr(base, name))] for name in ("data", "train", "eval")}
    found = [f"{section}.{param}" for section, names in sections.items() if param in names]
    if len(found) != 1:
        raise ConfigError(f"--param {param!r} " + ("is ambiguous: " + ", ".join(found) if found else
                                                   "is not a setting of this model or run"))
    return found[0]


def sweep_configs(base: RunConfig, param: str, values: list[Any]) -> dict[str, RunConfig]:
    path = setting_path(base, param)
    return {f"{param}={value}": with_settings(base, {path: value}, f"sweep {param}={value}") for value in values}


def plot_sweep(table: GridTable, param: str, values: list[Any], path: Path) -> Path:
    """The headline metrics (mean ± std over seeds) and the training time against the swept value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, labels = table.summary(), table.labels
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    x = np.asarray(values, dtype=float) if numeric else np.arange(len(values))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True, height_ratios=[2, 1])
    for metric in table.headline():
        stats = [summary[label]["metrics"][table.protocol][metric] for label in labels]
        top.errorbar(x, [s["mean"] for s in stats], yerr=[s["std"] for s in stats], marker="o", capsize=3,
                     label=metric)
    top.set_ylabel(f"test metric ({table.protocol})")
    top.legend()
    seconds = [summary[label]["train_seconds"] for label in labels]
    bottom.errorbar(x, [s["mean"] for s in seconds], yerr=[s["std"] for s in seconds], marker="s", capsize=3,
                    color="gray")
    bottom.set_ylabel("training s")
    bottom.set_xlabel(param)
    if not numeric:
        bottom.set_xticks(x, [str(v) for v in values])
    top.set_title(f"effect of {param} (mean ± std over seeds {','.join(map(str, summary[labels[0]]['seeds']))})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
