"""Readers for the MovieLens-100K files: `u.data` (ratings) and `u.item` (titles, latin-1)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl

from seqrec.data.filters import Filters, apply_filters
from seqrec.data.interactions import IdMap, Interactions
from seqrec.data.readers import canonical_integers, read_bytes, read_text, to_interactions
from seqrec.datasets import ITEMS_FILE, ML100K_RATINGS_SHA256, RATINGS_FILE, file_digest
from seqrec.errors import DataError

RATING_COLUMNS = ("user", "item", "rating", "timestamp")


def read_delimited_integers(path: Path, separator: str, columns: tuple[str, ...]) -> pl.DataFrame:
    """A strict reader for headerless integer tables: every line must have len(columns) canonical integer fields.

    Raises DataError naming the file, 1-based line, column and offending value.
    """
    lines = pl.Series("line", read_text(path).split("\n"))
    if len(lines) and lines[-1] == "":
        lines = lines[:-1]
    if len(lines) == 0:
        raise DataError(f"{path}: file is empty")
    fields = lines.str.split(separator)
    counts = fields.list.len().to_numpy()
    if (bad := np.flatnonzero(counts != len(columns))).size:
        line = int(bad[0])
        raise DataError(f"{path}:{line + 1}: expected {len(columns)} fields ({', '.join(columns)}) separated by "
                        f"{separator!r}, found {counts[line]}: {lines[line]!r} (file truncated or corrupt?)")
    frame = pl.DataFrame({name: fields.list.get(i) for i, name in enumerate(columns)})
    parsed = pl.DataFrame({name: canonical_integers(frame[name]) for name in columns})
    for name in columns:
        if (bad := np.flatnonzero(parsed[name].is_null().to_numpy())).size:
            line = int(bad[0])
            raise DataError(f"{path}:{line + 1}: column {columns.index(name) + 1} ({name}) is not an integer: "
                            f"{frame[name][line]!r}")
    return parsed


def read_titles(path: Path, item_map: IdMap) -> np.ndarray | None:
    """Titles aligned with item indices ((num_items + 1,), index 0 empty); None when the file is absent."""
    if not path.is_file():
        return None
    lines = pl.Series(read_bytes(path).decode("latin-1").splitlines())
    fields = lines.filter(lines != "").str.split("|")
    ids = canonical_integers(fields.list.get(0)).to_numpy()
    titles = np.full(len(item_map) + 1, "", dtype=object)
    known = ~np.isnan(ids.astype(float))
    index = item_map.to_index(ids[known].astype(np.int64))
    titles[index[index > 0]] = fields.list.get(1, null_on_oob=True).to_numpy()[known][index > 0]
    titles[0] = ""
    return titles


def load_ml100k(folder: Path, verify_checksum: bool = True, filters: Filters | None = None) -> Interactions:
    """MovieLens-100K as Interactions in file order (ratings become implicit events), optionally filtered."""
    path = folder / RATINGS_FILE
    table = read_delimited_integers(path, "\t", RATING_COLUMNS)
    checksum = file_digest(path)
    if verify_checksum and checksum != ML100K_RATINGS_SHA256:
        raise DataError(f"{path}: checksum mismatch (sha256 {checksum}, expected {ML100K_RATINGS_SHA256}); the "
                        "file is not the published MovieLens-100K (set data.verify_checksum=false to use it anyway)")
    frame = table.rename({"timestamp": "time"}).with_row_index("line", offset=1)
    counts = {"events_read": frame.height}
    if filters is not None:
        frame, counts = apply_filters(frame, filters, str(path))
    log = to_interactions(frame, checksum, {"path": str(path), "format": "ml-100k"} | counts)
    return dataclasses.replace(log, item_titles=read_titles(folder / ITEMS_FILE, log.item_map))
