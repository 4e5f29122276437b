"""Known datasets by name, what `--data` means, and loading the log a DataConfig names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from seqrec.config import DataConfig
from seqrec.data.filters import Filters
from seqrec.data.interactions import Interactions
from seqrec.data.movielens import load_ml100k
from seqrec.data.readers import Columns, read_log
from seqrec.data.sessions import synthetic_sessions
from seqrec.datasets import resolve_ml100k
from seqrec.errors import ConfigError

DATASETS: dict[str, Callable[[DataConfig, Filters], Interactions]] = {
    "ml-100k": lambda cfg, filters: load_ml100k(resolve_ml100k(cfg.data_dir), cfg.verify_checksum, filters),
    "synthetic-sessions": lambda cfg, filters: synthetic_sessions(seed=0),
}


def data_source(data: str) -> dict[str, str]:
    """`--data` as settings: a known dataset name (e.g. ml-100k) unless a file of that name exists."""
    if data in DATASETS and not Path(data).exists():
        return {"data.dataset": data}
    return {"data.path": data}


def load_dataset(cfg: DataConfig) -> Interactions:
    """The log named by `cfg`: a file (cfg.path, read with its column mapping) or a known dataset; filtered."""
    filters = Filters(cfg.min_rating, cfg.dedupe, cfg.k_core)
    if cfg.path is not None:
        return read_log(Path(cfg.path), cfg.format, Columns(cfg.user_col, cfg.item_col, cfg.time_col, cfg.rating_col),
                        filters, cfg.has_header, cfg.numeric_ids)
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {cfg.dataset!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[cfg.dataset](cfg, filters)
