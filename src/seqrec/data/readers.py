"""Readers for any interaction log: CSV / TSV / Parquet with a column mapping, and the
one-sequence-per-line text format (`user item item ...`, already in time order).

Each reader yields an event table (columns line, user, item, time, [rating]) in file order, which
`seqrec.data.filters` filters and `to_interactions` turns into dense indices. An id column is read as
integers only when every value is an integer written canonically (see `canonical_integers`), or when
it has a numeric type (whose values must then be whole numbers); otherwise every id is kept as its
text, so "007" and "7" are always two ids. Times may be integers, decimals (only their order is
kept) or ISO-8601 date-times; without a time column (and in the sequences format) the time is the
position in the file. CSV / TSV lines with no value in any field are skipped. Every bad value
(including NaN and infinite numbers) raises DataError naming file, line (Parquet: row), column and value.
"""

from __future__ import annotations

import codecs
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
CANONICAL_INTEGER = r"^(0|-?[1-9][0-9]*)$"        # "-0", "+7", "007", "7.0" are not canonical
_TEXT_TYPES = (pl.String, pl.Categorical, pl.Enum, pl.Null)
_HOLDS = {"user": "user ids", "item": "item ids", "time": "times", "rating": "ratings"}
_TIME_KINDS = {
    "an integer": lambda text: text.str.to_integer(strict=False),
    "a number": lambda text: text.cast(pl.Float64, strict=False),
    "an ISO-8601 date-time": lambda text: text.str.to_datetime(strict=False, time_unit="us").dt.epoch("us"),
}


@dataclass(frozen=True)
class Columns:
    """Which source column holds what; time and rating are optional."""

    user: str = "user"
    item: str = "item"
    time: str | None = None
    rating: str | None = None


def canonical_integers(text: pl.Series) -> pl.Series:
    """The integer each id text writes canonically, null for every other text.

    Surrounding whitespace is ignored; the rest must match ``0|-?[1-9][0-9]*`` and fit in int64.
    " 7", "0" and "-12" are integers; "007", "+7", "-0", "7.0", "1e3", "1 000" and
    "9223372036854775808" are not.

    Parameters
    ----------
    text : pl.Series
        (N,) strings.

    Returns
    -------
    pl.Series
        (N,) Int64, null where the text is not a canonical integer.
    """
    stripped = pl.first().str.strip_chars()
    return text.to_frame().select(pl.when(stripped.str.contains(CANONICAL_INTEGER))
                                  .then(stripped.str.to_integer(strict=False))).to_series()


def read_bytes(path: Path) -> bytes:
    """The bytes of a data file; a one-line DataError when it is missing or cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise _unreadable(path, err) from None


def read_text(path: Path) -> str:
    """A UTF-8 data file as text, without a leading byte-order mark; a bad byte is a DataError naming its line."""
    data = read_bytes(path).removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 text (byte {data[err.start]:#04x})") from None


def _unreadable(path: Path, err: OSError) -> DataError:
    if isinstance(err, FileNotFoundError):
        return DataError(f"{path}: file not found")
    return DataError(f"{path}: cannot be read: {err.strerror or str(err).splitlines()[0]}")


def infer_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown data format {fmt!r}; known: {', '.join(FORMATS)}")
        return fmt
    if path.suffix.lower() not in EXTENSIONS:
        raise ConfigError(f"{path}: cannot tell the format from the extension; pass --format ({', '.join(FORMATS)})")
    return EXTENSIONS[path.suffix.lower()]


@dataclass(frozen=True)
class _Raw:
    """A scanned file: line, user, item, [time], [rating] as found, and what error messages name."""

    frame: pl.DataFrame
    path: Path
    fmt: str
    sources: dict[str, str]             # column -> its name in the file

    def error(self, bad: pl.Series, column: str, what: str) -> DataError:
        row = bad.arg_true()[0]
        line = self.frame["line"][row]
        where = f"{self.path}: row {line}" if self.fmt == "parquet" else f"{self.path}:{line}"
        return DataError(f"{where}: column {self.sources[column]!r} {what}: {self.frame[column][row]!r}")

    def values(self, column: str) -> pl.Series:
        """The column, text stripped of surrounding whitespace; DataError at its first missing or empty value."""
        values = self.frame[column]
        if not (values.dtype.is_numeric() or values.dtype.is_temporal()):
            values = values.cast(pl.String).str.strip_chars()
        empty = values.is_null() | (values == "") if values.dtype == pl.String else values.is_null()
        if empty.any():
            raise self.error(empty, column, "is empty")
        return values


def _accepts(column: str, dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype.base_type() in _TEXT_TYPES or (column == "time" and dtype.is_temporal())


def _scan_table(path: Path, fmt: str, columns: Columns, has_header: bool) -> _Raw:
    """The mapped columns of a CSV / TSV (all read as text) or Parquet file, plus each row's line number."""
    wanted = {name: src for name, src in vars(columns).items() if src is not None}
    try:
        if fmt == "parquet":
            lazy, line, blank = pl.scan_parquet(path, glob=False), pl.int_range(pl.len()) + 1, pl.lit(False)
        else:
            lazy = pl.scan_csv(path, separator="," if fmt == "csv" else "\t", has_header=has_header,
                               infer_schema=False, glob=False)
            breaks = pl.sum_horizontal(pl.all().str.count_matches("\n", literal=True))  # quoted fields span lines
            line = pl.int_range(pl.len()) + (2 if has_header else 1) + breaks.cum_sum() - breaks
            blank = pl.all_horizontal(pl.all().is_null())                              # an empty line
        schema = lazy.collect_schema()
        found = schema.names()
        if missing := [src for src in wanted.values() if src not in found]:
            raise DataError(f"{path}: missing column(s) {', '.join(map(repr, missing))}; columns found: "
                            f"{', '.join(repr(name)[1:-1] for name in found)} "
                            "(map them with --user-col, --item-col, --time-col, --rating-col)")
        for name, src in wanted.items():
            if f"{src}_duplicated_0" in found:                # how Polars renames a repeated header name
                raise DataError(f"{path}: the header names column {src!r} more than once")
            if not _accepts(name, schema[src]):
                raise DataError(f"{path}: column {src!r} has type {schema[src]}, which cannot hold {_HOLDS[name]}")
        frame = (lazy.select(line.alias("line"), blank.alias("blank"),
                             *(pl.nth(found.index(src)).alias(name) for name, src in wanted.items()))
                 .filter(~pl.col("blank")).drop("blank").collect())
    except OSError as err:
        raise _unreadable(path, err) from None
    except pl.exceptions.PolarsError as err:
        if fmt != "parquet":
            read_text(path)                                   # a bad byte is the likeliest cause: name its line
        raise DataError(f"{path}: cannot be read as {fmt}: {str(err).splitlines()[0]}") from None
    return _Raw(frame, path, fmt, wanted)


def _scan_sequences(path: Path) -> _Raw:
    """`user item item ...` per line (whitespace separated) -> one row per item, time = position in file."""
    fields = pl.Series(read_text(path).split("\n")).str.replace_all(r"\s+", " ").str.strip_chars().str.split(" ")
    frame = (pl.DataFrame({"fields": fields}).with_row_index("line", offset=1)
             .filter(pl.col("fields").list.first() != "")
             .select("line", pl.col("fields").list.first().alias("user"), pl.col("fields").list.slice(1).alias("item"))
             .explode("item").drop_nulls("item"))
    return _Raw(frame, path, "sequences", {"user": "user", "item": "item"})


def _ids(raw: _Raw, column: str, numeric: bool) -> pl.Series:
    values = raw.values(column)
    if values.dtype.is_numeric():                             # integers, floats and decimals must be whole
        ints = values.cast(pl.Int64, strict=False)
        if (bad := ints.is_null() | (ints.cast(values.dtype) != values)).any():
            raise raw.error(bad, column, "is not a whole number in the int64 range")
        return ints
    # A line break in an id is a stray quote that swallowed the lines after it; NumPy's strings drop trailing NULs.
    if (control := values.str.contains(r"[\x00-\x1f\x7f]")).any():
        raise raw.error(control, column, "contains a control character")
    ints = canonical_integers(values)
    if not ints.null_count():
        return ints
    if numeric:
        raise raw.error(ints.is_null(), column, "is not an integer id")
    return values


def _parse_times(raw: _Raw, text: pl.Series) -> pl.Series:
    """Integers, else numbers, else ISO-8601 date-times (microseconds), whichever parses every value."""
    attempts = []
    for parse in _TIME_KINDS.values():
        try:
            parsed = parse(text)
        except pl.exceptions.PolarsError:                     # no date-time format fits the first value
            parsed = pl.repeat(None, len(text), dtype=pl.Int64, eager=True)
        if not parsed.null_count():
            return parsed
        attempts.append(parsed)
    closest = min(range(len(attempts)), key=lambda kind: attempts[kind].null_count())
    bad = attempts[closest].is_null()
    row = bad.arg_true()[0]
    if any(attempt[row] is not None for attempt in attempts):
        raise raw.error(bad, "time", f"is not {list(_TIME_KINDS)[closest]} like the column's other times")
    raise raw.error(bad, "time", "is not a number or an ISO-8601 date-time")


def _finite(raw: _Raw, numbers: pl.Series, column: str) -> pl.Series:
    if (bad := ~numbers.is_finite()).any():
        raise raw.error(bad, column, "is not a finite number")
    return numbers


def _times(raw: _Raw) -> pl.Series:
    values = raw.values("time")
    if values.dtype in (pl.Date, pl.Datetime):
        values = values.dt.epoch("us")
    elif values.dtype.is_temporal():                          # durations, times of day
        values = values.to_physical()
    if not values.dtype.is_numeric():
        values = _parse_times(raw, values)
    if values.dtype.is_integer() and not (ints := values.cast(pl.Int64, strict=False)).null_count():
        return ints
    return _finite(raw, values.cast(pl.Float64), "time").rank("dense").cast(pl.Int64)   # only the order is kept


def _ratings(raw: _Raw) -> pl.Series:
    numbers = raw.values("rating").cast(pl.Float64, strict=False)
    if (bad := numbers.is_null()).any():
        raise raw.error(bad, "rating", "is not a number")
    return _finite(raw, numbers, "rating")


def read_events(path: Path, fmt: str | None = None, columns: Columns = Columns(), has_header: bool = True,
                numeric_ids: bool = False) -> pl.DataFrame:
    """The event table of a log file: line, user, item, time (int64), [rating (float)], in file order."""
    path = Path(path).expanduser()
    if path.is_dir():                                         # Polars would read the files inside as one table
        raise DataError(f"{path}: is a directory, not a data file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    fmt = infer_format(path, fmt)
    raw = _scan_sequences(path) if fmt == "sequences" else _scan_table(path, fmt, columns, has_header)
    parsed = {"line": raw.frame["line"], "user": _ids(raw, "user", numeric_ids), "item": _ids(raw, "item", numeric_ids),
              "time": _times(raw) if "time" in raw.frame.columns else pl.Series(np.arange(raw.frame.height))}
    if "rating" in raw.frame.columns:
        parsed["rating"] = _ratings(raw)
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
