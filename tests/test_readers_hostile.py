"""Readers on hostile input: each case is read correctly or fails with one DataError line naming where."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from seqrec.data.movielens import load_ml100k
from seqrec.data.readers import Columns, canonical_integers, read_log
from seqrec.errors import DataError
from tests.test_readers import CSV, MAPPED, write

TIMED = Columns(time="t", rating="r")


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def parquet(tmp_path: Path, **columns) -> Path:
    path = tmp_path / "log.parquet"
    pl.DataFrame(columns).write_parquet(path)
    return path


@pytest.mark.parametrize(("text", "value"), [
    ("7", 7), (" 7 ", 7), ("0", 0), ("-12", -12), ("9223372036854775807", 2**63 - 1), ("-9223372036854775808", -2**63),
    ("007", None), ("07", None), ("+7", None), ("-0", None), ("7.0", None), ("1e3", None), ("1 000", None),
    ("9223372036854775808", None), ("７", None), ("", None), ("x7", None), (None, None),
])
def test_canonical_integers_accept_only_an_integers_canonical_form(text, value):
    assert canonical_integers(pl.Series([text], dtype=pl.String)).to_list() == [value]


def test_ids_do_not_change_with_unrelated_rows(tmp_path):
    # "007", "07" and "7" are three ids whether or not the file holds a non-numeric id elsewhere.
    numeric = read_log(write(tmp_path, "a.csv", "user,item\n1,007\n1,07\n1,7\n"))
    mixed = read_log(write(tmp_path, "b.csv", "user,item\n1,007\n1,07\n1,7\nx,abc\n"))
    for log in (numeric, mixed):
        assert {"007", "07", "7"} <= set(log.item_map.external.tolist()) and log.num_items >= 3
    assert numeric.user_map.external.tolist() == [1]                   # canonical integers stay integers
    with pytest.raises(DataError, match=r"a\.csv:2: column 'item' is not an integer id: '007'"):
        read_log(tmp_path / "a.csv", numeric_ids=True)


def test_fullwidth_digits_and_unicode_ids_stay_text(tmp_path):
    log = read_log(write(tmp_path, "log.csv", "user,item\nü,７\nü,7\n日本,7\n"))
    assert log.item_map.external.tolist() == ["7", "７"] and log.user_map.external.tolist() == ["ü", "日本"]


def test_parquet_whole_float_ids_become_integers(tmp_path):
    log = read_log(parquet(tmp_path, user=[1.0, 2.0], item=[3.0, -0.0]))
    assert log.user_map.external.tolist() == [1, 2] and log.item_map.external.tolist() == [0, 3]


@pytest.mark.parametrize("bad", [1.5, float("nan"), float("inf"), 1e19])
def test_parquet_fractional_or_non_finite_float_ids_are_errors(tmp_path, bad):
    with pytest.raises(DataError, match=r"log\.parquet: row 2: column 'item' is not a whole number") as error:
        read_log(parquet(tmp_path, user=[1, 1], item=[3.0, bad]))
    assert one_line(error).endswith(repr(bad))


@pytest.mark.parametrize("column", ["r", "t"])
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400"])
def test_non_finite_ratings_and_times_are_errors(tmp_path, column, value):
    rows = {"r": "1,2,5,4\n1,3,6,{}\n", "t": "1,2,5,4\n1,3,{},4\n"}[column].format(value)
    with pytest.raises(DataError, match=rf"log\.csv:3: column '{column}' is not a finite number: '{value}'"):
        read_log(write(tmp_path, "log.csv", "user,item,t,r\n" + rows), columns=TIMED)


def test_parquet_nan_rating_and_time_are_errors(tmp_path):
    path = parquet(tmp_path, user=[1, 1], item=[2, 3], t=[1.5, float("nan")], r=[4.0, 5.0])
    with pytest.raises(DataError, match=r"row 2: column 't' is not a finite number: nan"):
        read_log(path, columns=TIMED)
    path = parquet(tmp_path, user=[1, 1], item=[2, 3], t=[1, 2], r=[float("inf"), 5.0])
    with pytest.raises(DataError, match=r"row 1: column 'r' is not a finite number: inf"):
        read_log(path, columns=TIMED)


@pytest.mark.parametrize("name", ["log.csv", "log.parquet", "seqs.txt"])
def test_a_directory_given_as_the_file_is_one_line(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(DataError, match=rf"{name}: is a directory, not a data file") as error:
        read_log(tmp_path / name)
    one_line(error)


def test_ml100k_u_data_as_a_directory_is_one_line(tmp_path):
    (tmp_path / "u.data").mkdir()
    with pytest.raises(DataError, match=r"u\.data: cannot be read: Is a directory") as error:
        load_ml100k(tmp_path)
    one_line(error)


def deny(*args, **kwargs):
    raise PermissionError(13, "Permission denied")


@pytest.mark.parametrize(("name", "patched"), [("log.csv", "scan_csv"), ("log.parquet", "scan_parquet"),
                                               ("seqs.txt", None), ("u.data", None)])
def test_an_unreadable_file_is_one_line(tmp_path, monkeypatch, name, patched):
    # Tests run as root, whom chmod 000 does not stop: raise what the OS raises for everyone else.
    write(tmp_path, name, CSV)
    monkeypatch.setattr(*(("seqrec.data.readers.pl." + patched, deny) if patched else (Path, "read_bytes", deny)))
    with pytest.raises(DataError, match=rf"{name}: cannot be read: Permission denied") as error:
        load_ml100k(tmp_path) if name == "u.data" else read_log(tmp_path / name)
    one_line(error)


@pytest.mark.parametrize(("values", "kind"), [
    ([[1], [2]], r"List\(Int64\)"), ([{"a": 1}, {"a": 2}], "Struct"), ([b"a", b"b"], "Binary"),
    ([True, False], "Boolean"),
])
@pytest.mark.parametrize(("column", "holds"), [("user", "user ids"), ("item", "item ids"), ("t", "times"),
                                               ("r", "ratings")])
def test_parquet_columns_of_a_type_ids_cannot_have_are_one_line(tmp_path, values, kind, column, holds):
    table = {"user": [1, 2], "item": [3, 4], "t": [5, 6], "r": [1.0, 2.0]} | {column: values}
    with pytest.raises(DataError, match=rf"log\.parquet: column '{column}' has type {kind}.*cannot hold {holds}$"):
        read_log(parquet(tmp_path, **table), columns=TIMED)


def test_parquet_temporal_times_and_missing_values(tmp_path):
    days = [dt.date(2024, 1, 2), dt.date(2024, 1, 1)]
    assert read_log(parquet(tmp_path, user=[1, 1], item=[2, 3], t=days), columns=Columns(time="t")).times.tolist() \
        == [1704153600000000, 1704067200000000]                          # microseconds since 1970, as for ISO text
    waits = [dt.timedelta(seconds=2), dt.timedelta(seconds=1)]
    assert read_log(parquet(tmp_path, user=[1, 1], item=[2, 3], t=waits), columns=Columns(time="t")).times.tolist() \
        == [2_000_000, 1_000_000]
    with pytest.raises(DataError, match=r"log\.parquet: row 2: column 'item' is empty: None"):
        read_log(parquet(tmp_path, user=[1, 1], item=[2, None]))


def test_crlf_line_ends_and_a_byte_order_mark_read_like_plain_lines(tmp_path):
    plain = read_log(write(tmp_path, "a.csv", CSV), columns=MAPPED)
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV.replace("\n", "\r\n").encode())
    other = read_log(path, columns=MAPPED)
    for name in ("users", "items", "times"):
        assert getattr(other, name).tolist() == getattr(plain, name).tolist()
    (tmp_path / "s.txt").write_bytes(b"\xef\xbb\xbfu1 5 6\r\nu2 7\r\n")
    assert read_log(tmp_path / "s.txt").user_map.external.tolist() == ["u1", "u2"]


def test_empty_lines_are_skipped_and_later_lines_keep_their_numbers(tmp_path):
    log = read_log(write(tmp_path, "a.csv", "user,item\n1,2\n\n3,4\n\n\n"))
    assert log.users.tolist() == [1, 2] and log.times.tolist() == [0, 1]
    with pytest.raises(DataError, match=r"b\.csv:5: column 'item' is empty: None"):
        read_log(write(tmp_path, "b.csv", "user,item\n1,2\n\n3,4\n5,\n"))


def test_a_quoted_field_spanning_lines_keeps_later_line_numbers(tmp_path):
    text = 'user,item,note\n1,2,"two\nline note"\n1,x,ok\n'
    with pytest.raises(DataError, match=r"log\.csv:4: column 'item' is not an integer id: 'x'"):
        read_log(write(tmp_path, "log.csv", text), numeric_ids=True)


@pytest.mark.parametrize(("text", "columns", "message"), [
    ("user,item,item\n1,2,3\n", Columns(), r"the header names column 'item' more than once"),
    ("user,item\n", Columns(), r"log\.csv: no events in the file"),
    ("", Columns(), r"log\.csv: cannot be read as csv: empty CSV"),
    ("user,item\n1,2\n \t,3\n", Columns(), r"log\.csv:3: column 'user' is empty: ' \\t'"),
    ("user,item,r\n1,2,5\n1,3,\n", Columns(rating="r"), r"log\.csv:3: column 'r' is empty: None"),
    ("user,item\na\x00,2\n", Columns(), r"log\.csv:2: column 'user' contains a control character: 'a\\x00'"),
    ('user,item\nu,"x\nu,y\nu,z"\nu,w\n', Columns(), r"log\.csv:2: column 'item' contains a control .*'x\\nu,y\\nu,z'"),
    ("user,item,t\n1,2,2024-01-01\n1,3,x7\n", Columns(time="t"),
     r"log\.csv:3: column 't' is not a number or an ISO-8601 date-time: 'x7'"),
    ("user,item,t\n1,2,2024-01-01\n1,3,2024-01-02\n1,4,17\n", Columns(time="t"),
     r"log\.csv:4: column 't' is not an ISO-8601 date-time like the column's other times: '17'"),
    ("user,item\r1,2\r", Columns(), r"missing column\(s\) 'item'; columns found: user, item\\r1, 2 \("),
])
def test_hostile_csv_is_one_line(tmp_path, text, columns, message):
    with pytest.raises(DataError, match=message) as error:
        read_log(write(tmp_path, "log.csv", text), columns=columns)
    one_line(error)


def test_invalid_utf8_names_its_line(tmp_path):
    (tmp_path / "log.csv").write_bytes(b"user,item\n1,2\n1,\xff\n")
    with pytest.raises(DataError, match=r"log\.csv:3: not valid UTF-8 text \(byte 0xff\)"):
        read_log(tmp_path / "log.csv")
    (tmp_path / "seqs.txt").write_bytes(b"u1 2\nu2 \xff\n")
    with pytest.raises(DataError, match=r"seqs\.txt:2: not valid UTF-8 text"):
        read_log(tmp_path / "seqs.txt")


def test_names_polars_would_misread_are_read_literally(tmp_path):
    # Brackets are glob syntax, "^...$" is a column regex, and "line" is the event table's own column.
    log = read_log(write(tmp_path, "log[1].csv", "line,x,^x$,item\n9,a,b,c\n"), columns=Columns(user="^x$"))
    assert log.user_map.external.tolist() == ["b"] and log.item_map.external.tolist() == ["c"]


def test_an_empty_sequences_file_has_no_events(tmp_path):
    with pytest.raises(DataError, match=r"seqs\.txt: no events in the file"):
        read_log(write(tmp_path, "seqs.txt", "\n\n"))
