"""Readers and filters on small temporary files, including each bad-input error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from seqrec.data.filters import Filters
from seqrec.data.movielens import load_ml100k
from seqrec.data.readers import Columns, read_log
from seqrec.errors import ConfigError, DataError

CSV = "uid,movie,ts,stars\nbob,7,100,4\nann,3,50,5\nbob,3,100,2\nann,9,60,1\n"
MAPPED = Columns("uid", "movie", "ts", "stars")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_column_mapping_keeps_id_types_and_file_order(tmp_path):
    log = read_log(write(tmp_path, "log.csv", CSV), columns=MAPPED)
    assert log.user_map.external.tolist() == ["ann", "bob"]           # strings stay strings
    assert log.item_map.external.tolist() == [3, 7, 9]                 # integers stay integers
    assert log.users.tolist() == [2, 1, 2, 1] and log.items.tolist() == [2, 1, 1, 3]
    assert log.times.tolist() == [100, 50, 100, 60]
    assert log.source["events_read"] == 4 and len(log.checksum) == 64


def test_tsv_parquet_and_csv_give_the_same_log(tmp_path):
    csv = read_log(write(tmp_path, "log.csv", CSV), columns=MAPPED)
    tsv = read_log(write(tmp_path, "log.tsv", CSV.replace(",", "\t")), columns=MAPPED)
    pl.read_csv(tmp_path / "log.csv").write_parquet(tmp_path / "log.parquet")
    parquet = read_log(tmp_path / "log.parquet", columns=MAPPED)
    for other in (tsv, parquet):
        assert other.users.tolist() == csv.users.tolist() and other.items.tolist() == csv.items.tolist()
        assert other.times.tolist() == csv.times.tolist()


def test_without_a_time_column_file_order_is_time_order(tmp_path):
    log = read_log(write(tmp_path, "log.csv", CSV), columns=Columns("uid", "movie"))
    assert log.times.tolist() == [0, 1, 2, 3]


def test_iso_datetimes_and_decimal_times_keep_their_order(tmp_path):
    text = "user,item,when\n1,1,2024-01-02T00:00:00\n1,2,2024-01-01T12:00:00\n"
    log = read_log(write(tmp_path, "a.csv", text), columns=Columns(time="when"))
    assert log.times[0] > log.times[1]
    log = read_log(write(tmp_path, "b.csv", "user,item,t\n1,1,2.5\n1,2,0.5\n1,3,2.5\n"), columns=Columns(time="t"))
    assert log.times.tolist() == [2, 1, 2]


def test_sequences_format(tmp_path):
    path = write(tmp_path, "seqs.txt", "u1 5 6 7\n\nu2\t6   8\n")
    log = read_log(path, fmt="sequences")
    assert log.user_map.external.tolist() == ["u1", "u2"]
    assert log.users.tolist() == [1, 1, 1, 2, 2]
    assert log.item_map.to_external(log.items).tolist() == [5, 6, 7, 6, 8]
    assert log.times.tolist() == [0, 1, 2, 3, 4]


def test_filters_rating_dedupe_and_iterative_k_core(tmp_path):
    rows = ["user,item,time,rating", "a,1,1,5", "a,1,1,5", "a,2,2,1", "a,1,3,4"]
    path = write(tmp_path, "log.csv", "\n".join(rows) + "\n")
    cols = Columns(time="time", rating="rating")
    assert len(read_log(path, columns=cols, filters=Filters(dedupe="none"))) == 4
    assert len(read_log(path, columns=cols)) == 3                                  # exact duplicate dropped
    log = read_log(path, columns=cols, filters=Filters(dedupe="user-item"))
    assert log.times.tolist() == [1, 2]                                             # first (a, 1) kept
    assert len(read_log(path, columns=cols, filters=Filters(min_rating=4))) == 2
    # k = 2: item z has one event -> dropped; then user c has one event -> dropped; then item y has one.
    events = [("a", "x"), ("a", "x"), ("b", "x"), ("b", "x"), ("c", "y"), ("c", "z"), ("a", "y")]
    text = "user,item\n" + "\n".join(f"{u},{i}" for u, i in events) + "\n"
    log = read_log(write(tmp_path, "k.csv", text), filters=Filters(k_core=2))
    assert log.user_map.external.tolist() == ["a", "b"] and log.item_map.external.tolist() == ["x"]
    assert len(log) == 4


@pytest.mark.parametrize(("text", "columns", "numeric", "message"), [
    ("user,item\n1,2\n", Columns(time="ts"), False, r"missing column\(s\) 'ts'; columns found: user, item"),
    ("user,item,t\n1,2,5\n1,3,x7\n", Columns(time="t"), False, r"log.csv:3: column 't' .*: 'x7'"),
    ("user,item,r\n1,2,5\n1,3,4\n1,4,high\n", Columns(rating="r"), False,
     r"log.csv:4: column 'r' is not a number: 'high'"),
    ("user,item\n1,2\nx9,3\n", Columns(), True, r"log.csv:3: column 'user' is not an integer id: 'x9'"),
    ("user,item\n1,2\n1,\n", Columns(), False, r"log.csv:3: column 'item' is empty"),
])
def test_bad_input_names_file_line_column_and_value(tmp_path, text, columns, numeric, message):
    with pytest.raises(DataError, match=message):
        read_log(write(tmp_path, "log.csv", text), columns=columns, numeric_ids=numeric)


def test_missing_file_unknown_format_and_empty_result(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_log(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="--format"):
        read_log(write(tmp_path, "log.dat", CSV))
    path = write(tmp_path, "log.csv", "user,item,r\n1,2,1\n1,3,2\n")
    with pytest.raises(DataError, match="no events left after filter min_rating=3"):
        read_log(path, columns=Columns(rating="r"), filters=Filters(min_rating=3))
    with pytest.raises(DataError, match="no events left after filter k_core=5"):
        read_log(path, filters=Filters(k_core=5))
    with pytest.raises(ConfigError, match="needs a rating column"):
        read_log(path, filters=Filters(min_rating=3))


def test_ml100k_as_a_csv_reads_as_the_same_log(ml100k_dir, tmp_path):
    table = pl.read_csv(ml100k_dir / "u.data", separator="\t", has_header=False,
                        new_columns=["user_id", "movie_id", "rating", "unix_time"])
    table.write_csv(tmp_path / "ratings.csv")
    from_csv = read_log(tmp_path / "ratings.csv", columns=Columns("user_id", "movie_id", "unix_time", "rating"))
    native = load_ml100k(ml100k_dir)
    for name in ("users", "items", "times"):
        assert np.array_equal(getattr(from_csv, name), getattr(native, name))
    assert np.array_equal(from_csv.item_map.external, native.item_map.external)


def test_string_id_maps_do_not_truncate_longer_ids(tmp_path):
    log = read_log(write(tmp_path, "log.csv", "user,item\na,x\nb,y\n"))
    assert log.user_map.to_index(np.array(["a", "ab", "b"])).tolist() == [1, 0, 2]


def test_parquet_and_sequences_errors_name_the_row_or_line(tmp_path):
    pl.DataFrame({"user": [1, 2], "item": [3, 4], "t": ["5", "soon"]}).write_parquet(tmp_path / "log.parquet")
    with pytest.raises(DataError, match=r"log\.parquet: row 2: column 't' .*: 'soon'"):
        read_log(tmp_path / "log.parquet", columns=Columns(time="t"))
    path = write(tmp_path, "seqs.txt", "1 2 3\n\n2 4 x5\n")
    with pytest.raises(DataError, match=r"seqs\.txt:3: column 'item' is not an integer id: 'x5'"):
        read_log(path, numeric_ids=True)
