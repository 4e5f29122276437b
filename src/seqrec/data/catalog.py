"""Known datasets by name, what `--data` means, and loading the log a DataConfig names.

The public datasets (ml-100k, ml-1m, ml-latest-small, amazon-video-games) are found by
`seqrec.datasets.resolve`: `--data-dir`, else the dataset's environment variable, else the download
cache (see that module for the variables and the checksums).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from seqrec.config import DataConfig
from seqrec.data.filters import Filters
from seqrec.data.interactions import Interactions
from seqrec.data.movielens import load_ml100k
from seqrec.data.public import load_amazon_video_games, load_ml1m, load_ml_latest_small
from seqrec.data.readers import Columns, read_log
from seqrec.data.sessions import synthetic_sessions
from seqrec.datasets import resolve
from seqrec.errors import ConfigError

Loader = Callable[[DataConfig, Filters], Interactions]


def _public(name: str, load: Callable[[Path, bool, Filters], Interactions]) -> Loader:
    return lambda cfg, filters: load(resolve(name, cfg.data_dir), cfg.verify_checksum, filters)


DATASETS: dict[str, Loader] = {
    "ml-100k": _public("ml-100k", load_ml100k),
    "ml-1m": _public("ml-1m", load_ml1m),
    "ml-latest-small": _public("ml-latest-small", load_ml_latest_small),
    "amazon-video-games": _public("amazon-video-games", load_amazon_video_games),
    "synthetic-sessions": lambda cfg, filters: synthetic_sessions(seed=0),
}


def data_source(data: str) -> dict[str, str]:
    """`--data` as settings: a known dataset name (e.g. ml-100k, ml-1m) unless a file of that name exists."""
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
