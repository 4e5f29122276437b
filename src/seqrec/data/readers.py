"""Readers for any interaction log: CSV / TSV / Parquet with a column mapping, and the
one-sequence-per-line text format (`user item item ...`, already in time order).

Each reader yields an event table (columns line, user, item, time, [rating]) in file order, which
`seqrec.data.filters` filters and `to_interactions` turns into dense indices. Ids keep their type
(integers when every value is one, else strings). Times may be integers, decimals (only their order
is kept) or ISO-8601 date-times; without a time column (and in the sequences format) the time is the
position in the file. Every bad value raises DataError naming file, line, column and value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from seqrec.data.filters import Filters, apply_filters
from seqrec.data.interactions import IdMap, Interactions
from seqrec.datasets import file_digest
from seqrec.errors import ConfigError, DataError

FORMATS = ("csv", "tsv", "parquet", "sequences")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
              ".txt": "sequences"}


@dataclass(frozen=True)
class Columns:
    """Which source column holds what; time and rating are optional."""

    user: str = "user"
    item: str = "item"
    time: str | None = None
    rating: str | None = None


def infer_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown data format {fmt!r}; known: {', '.join(FORMATS)}")
        return fmt
    if path.suffix.lower() not in EXTENSIONS:
        raise ConfigError(f"{path}: cannot tell the format from the extension; pass --format ({', '.join(FORMATS)})")
    return EXTENSIONS[path.suffix.lower()]


def _where(path: Path, line: int, fmt: str) -> str:
    return f"{path}: row {line}" if fmt == "parquet" else f"{path}:{line}"


def _scan_table(path: Path, fmt: str, columns: Columns, has_header: bool) -> pl.DataFrame:
    """The mapped columns of a CSV / TSV (all read as text) or Parquet file, plus each row's line number."""
    try:
        if fmt == "parquet":
            lazy, first_line = pl.scan_parquet(path), 1
        else:
            lazy = pl.scan_csv(path, separator="," if fmt == "csv" else "\t", has_header=has_header,
                               infer_schema=False)
            first_line = 2 if has_header else 1
        found = lazy.collect_schema().names()
        wanted = {"user": columns.user, "item": columns.item, "time": columns.time, "rating": columns.rating}
        missing = [src for src in wanted.values() if src is not None and src not in found]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(map(repr, missing))}; columns found: "
                            f"{', '.join(found)} (map them with --user-col, --item-col, --time-col, --rating-col)")
        return (lazy.with_row_index("line", offset=first_line)
                .select("line", *(pl.col(src).alias(name) for name, src in wanted.items() if src is not None))
                .collect())
    except pl.exceptions.PolarsError as err:
        raise DataError(f"{path}: cannot be read as {fmt}: {str(err).splitlines()[0]}") from None


def _scan_sequences(path: Path) -> pl.DataFrame:
    """`user item item ...` per line (whitespace separated) -> one row per item, time = position in file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 text") from None
    fields = pl.Series(text.splitlines()).str.replace_all(r"\s+", " ").str.strip_chars().str.split(" ")
    frame = (pl.DataFrame({"fields": fields}).with_row_index("line", offset=1)
             .filter(pl.col("fields").list.first() != "")
             .select("line", pl.col("fields").list.first().alias("user"), pl.col("fields").list.slice(1).alias("item"))
             .explode("item").drop_nulls("item"))
    return frame


def _first_bad(frame: pl.DataFrame, bad: pl.Series, column: str, source: str, path: Path, fmt: str,
               what: str) -> DataError:
    row = int(np.flatnonzero(bad.to_numpy())[0])
    return DataError(f"{_where(path, frame['line'][row], fmt)}: column {source!r} {what}: {frame[column][row]!r}")


def _ids(frame: pl.DataFrame, column: str, source: str, path: Path, fmt: str, numeric: bool) -> pl.Series:
    values = frame[column]
    if values.dtype.is_integer() and not values.null_count():
        return values.cast(pl.Int64)
    text = values.cast(pl.String).str.strip_chars()
    empty = text.is_null() | (text == "")
    if empty.any():
        raise _first_bad(frame, empty, column, source, path, fmt, "is empty")
    as_int = text.str.to_integer(strict=False)
    if not as_int.null_count():
        return as_int
    if numeric:
        raise _first_bad(frame, as_int.is_null(), column, source, path, fmt, "is not an integer id")
    return text


def _times(frame: pl.DataFrame, source: str, path: Path, fmt: str) -> pl.Series:
    values = frame["time"]
    if values.dtype.is_temporal():
        values = values.cast(pl.Datetime("us")).dt.epoch("us")
    if values.dtype.is_integer() and not values.null_count():
        return values.cast(pl.Int64)
    text = values.cast(pl.String).str.strip_chars()
    for parse in (lambda t: t.str.to_integer(strict=False), lambda t: t.cast(pl.Float64, strict=False),
                  lambda t: t.str.to_datetime(strict=False, time_unit="us").dt.epoch("us")):
        try:
            parsed = parse(text)
        except pl.exceptions.PolarsError:
            continue
        if not parsed.null_count():
            return parsed.rank("dense").cast(pl.Int64) if parsed.dtype.is_float() else parsed.cast(pl.Int64)
    bad = text.is_null() | text.str.to_integer(strict=False).is_null() & text.cast(pl.Float64, strict=False).is_null()
    raise _first_bad(frame.with_columns(time=text), bad, "time", source, path, fmt,
                     "is not a number or an ISO-8601 date-time")


def _ratings(frame: pl.DataFrame, source: str, path: Path, fmt: str) -> pl.Series:
    parsed = frame["rating"].cast(pl.Float64, strict=False)
    if parsed.null_count():
        raise _first_bad(frame, parsed.is_null(), "rating", source, path, fmt, "is not a number")
    return parsed


def read_events(path: Path, fmt: str | None = None, columns: Columns = Columns(), has_header: bool = True,
                numeric_ids: bool = False) -> pl.DataFrame:
    """The event table of a log file: line, user, item, time (int64), [rating (float)], in file order."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    fmt = infer_format(path, fmt)
    raw = _scan_sequences(path) if fmt == "sequences" else _scan_table(path, fmt, columns, has_header)
    parsed = {"line": raw["line"],
              "user": _ids(raw, "user", columns.user, path, fmt, numeric_ids),
              "item": _ids(raw, "item", columns.item, path, fmt, numeric_ids),
              "time": (_times(raw, columns.time, path, fmt) if "time" in raw.columns
                       else pl.Series(np.arange(raw.height, dtype=np.int64)))}
    if "rating" in raw.columns:
        parsed["rating"] = _ratings(raw, columns.rating or "rating", path, fmt)
    return pl.DataFrame(parsed)


def _numpy_ids(values: pl.Series) -> np.ndarray:
    return values.to_numpy() if values.dtype.is_integer() else values.to_numpy().astype(str)


def to_interactions(frame: pl.DataFrame, checksum: str = "", source: dict | None = None) -> Interactions:
    """Dense indices 1..n (sorted external ids) for the users and items of an event table, rows in order."""
    user_map, users = IdMap.fit(_numpy_ids(frame["user"]))
    item_map, items = IdMap.fit(_numpy_ids(frame["item"]))
    return Interactions(users, items, frame["time"].to_numpy().astype(np.int64), user_map, item_map,
                        checksum=checksum, source=source or {})


def read_log(path: Path, fmt: str | None = None, columns: Columns = Columns(), filters: Filters | None = None,
             has_header: bool = True, numeric_ids: bool = False) -> Interactions:
    """Read, filter and index an interaction log; `source` records the file, format and counts per filter."""
    path = Path(path).expanduser()
    frame = read_events(path, fmt, columns, has_header, numeric_ids)
    frame, counts = apply_filters(frame, filters or Filters(), str(path))
    source = {"path": str(path), "format": infer_format(path, fmt)} | counts
    return to_interactions(frame, file_digest(path), source)
