"""Readers for the MovieLens-100K files: `u.data` (ratings) and `u.item` (titles, latin-1), and the
strict table and title readers the other public datasets' loaders (seqrec.data.public) share."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl

from seqrec.data.filters import Filters, apply_filters
from seqrec.data.interactions import IdMap, Interactions
from seqrec.data.readers import canonical_integers, read_bytes, read_text, to_interactions
from seqrec.datasets import ITEMS_FILE, RATINGS_FILE, REMOTES, verify_file
from seqrec.errors import ConfigError, DataError

RATING_COLUMNS = ("user", "item", "rating", "timestamp")


def read_delimited_integers(path: Path, separator: str, columns: tuple[str, ...], header: bool = False) -> pl.DataFrame:
    """A strict reader for integer tables: every line must have len(columns) canonical integer fields.

    With `header`, the first line is skipped. Raises DataError naming the file, 1-based line, column
    and offending value.
    """
    lines = pl.Series("line", read_text(path).split("\n"))[int(header):]
    if len(lines) and lines[-1] == "":
        lines = lines[:-1]
    if len(lines) == 0:
        raise DataError(f"{path}: file is empty")
    fields = lines.str.split(separator)
    counts = fields.list.len().to_numpy()
    if (bad := np.flatnonzero(counts != len(columns))).size:
        line = int(bad[0])
        raise DataError(f"{path}:{line + 1 + header}: expected {len(columns)} fields ({', '.join(columns)}) separated "
                        f"by {separator!r}, found {counts[line]}: {lines[line]!r} (file truncated or corrupt?)")
    frame = pl.DataFrame({name: fields.list.get(i) for i, name in enumerate(columns)})
    parsed = pl.DataFrame({name: canonical_integers(frame[name]) for name in columns})
    for name in columns:
        if (bad := np.flatnonzero(parsed[name].is_null().to_numpy())).size:
            line = int(bad[0])
            raise DataError(f"{path}:{line + 1 + header}: column {columns.index(name) + 1} ({name}) is not an "
                            f"integer: {frame[name][line]!r}")
    return parsed


def align_titles(ids: pl.Series, names: pl.Series, item_map: IdMap) -> np.ndarray:
    """Titles aligned with item indices ((num_items + 1,), index 0 empty) from (movie id, title) pairs.

    `ids` is Int64 (null for an id that is not an integer); items absent from the pairs get "".
    """
    ids = ids.to_numpy()
    titles = np.full(len(item_map) + 1, "", dtype=object)
    known = ~np.isnan(ids.astype(float))
    index = item_map.to_index(ids[known].astype(np.int64))
    titles[index[index > 0]] = names.to_numpy()[known][index > 0]
    titles[0] = ""
    return titles


def decode(data: bytes, encodings: tuple[str, ...]) -> str:
    """`data` as text in the first of `encodings` that decodes it (list latin-1 last: it decodes anything)."""
    for encoding in encodings[:-1]:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode(encodings[-1])


def read_titles(path: Path, item_map: IdMap, separator: str = "|", encodings: tuple[str, ...] = ("latin-1",)
                ) -> np.ndarray | None:
    """Titles aligned with item indices ((num_items + 1,), index 0 empty); None when the file is absent.

    Each line is `id<sep>title<sep>...`; `encodings` are tried in order.
    """
    if not path.is_file():
        return None
    lines = pl.Series(decode(read_bytes(path), encodings).splitlines())
    fields = lines.filter(lines != "").str.split(separator)
    return align_titles(canonical_integers(fields.list.get(0)), fields.list.get(1, null_on_oob=True), item_map)


def to_log(frame: pl.DataFrame, path: Path, checksum: str, fmt: str, filters: Filters | None) -> Interactions:
    """An event table (line, user, item, time, [rating]) of a known dataset, filtered and indexed, file order kept."""
    counts = {"events_read": frame.height}
    if filters is not None:
        if filters.min_rating is not None and "rating" not in frame.columns:
            raise ConfigError(f"data.min_rating: {path} has no ratings (dataset {fmt}), so no rating threshold applies")
        frame, counts = apply_filters(frame, filters, str(path))
    return to_interactions(frame, checksum, {"path": str(path), "format": fmt} | counts)


def load_ml100k(folder: Path, verify_checksum: bool = True, filters: Filters | None = None) -> Interactions:
    """MovieLens-100K as Interactions in file order (ratings become implicit events), optionally filtered."""
    path = folder / RATINGS_FILE
    table = read_delimited_integers(path, "\t", RATING_COLUMNS)
    checksum = verify_file(path, REMOTES["ml-100k"], verify_checksum)
    frame = table.rename({"timestamp": "time"}).with_row_index("line", offset=1)
    log = to_log(frame, path, checksum, "ml-100k", filters)
    return dataclasses.replace(log, item_titles=read_titles(folder / ITEMS_FILE, log.item_map))
