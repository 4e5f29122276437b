"""ml-1m, ml-latest-small and amazon-video-games: the loaders on the real local copies (../shared/datasets;
skipped when absent, failing in CI), both ml-1m forms, and their one-line errors on small files."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from seqrec.bundle import load_bundle
from seqrec.cli import app
from seqrec.config import DataConfig
from seqrec.data.catalog import data_source, load_dataset
from seqrec.data.filters import Filters
from seqrec.data.public import load_amazon_video_games, load_ml1m
from seqrec.errors import ConfigError, DataError
from seqrec.recommend import recommend

# name -> (fixture, events, users, items, sha256 prefix), as the shared datasets README gives them
REAL = {
    "ml-1m": ("ml1m_dir", 1_000_209, 6_040, 3_706, "6c2c421d"),
    "ml-latest-small": ("ml_latest_small_dir", 100_836, 610, 9_724, "aa289ca8"),
    "amazon-video-games": ("amazon_video_games_dir", 287_107, 31_013, 23_715, "b7376fe2"),
}


def one_line(error: pytest.ExceptionInfo) -> str:
    assert "\n" not in str(error.value)
    return str(error.value)


@pytest.fixture(scope="module")
def real(request):
    """The three real logs, each read once for the module (ML-1M in about a second)."""
    cache = {}

    def get(name: str):
        if name not in cache:
            folder = request.getfixturevalue(REAL[name][0])
            cache[name] = load_dataset(DataConfig(dataset=name, data_dir=str(folder)))
        return cache[name]
    return get


@pytest.mark.parametrize("name", sorted(REAL))
def test_counts_and_checksum_match_the_published_files(real, name):
    log = real(name)
    _, events, users, items, sha = REAL[name]
    assert (len(log), log.num_users, log.num_items) == (events, users, items)
    assert log.checksum.startswith(sha) and log.source["format"] == name


@pytest.mark.parametrize("name", sorted(REAL))
def test_data_names_the_dataset_unless_a_file_has_that_name(name, tmp_path, monkeypatch):
    assert data_source(name) == {"data.dataset": name}
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text("user,item\n")
    assert data_source(name) == {"data.path": name}


def test_ml1m_items_are_movie_ids_with_titles(real, ml1m_dir):
    log = real("ml-1m")
    item_map = pl.read_csv(ml1m_dir / "item_map.tsv", separator="\t")
    np.testing.assert_array_equal(log.item_map.external, np.sort(item_map["movie_id"].to_numpy()))
    assert log.item_titles[log.item_map.to_index([1, 2858])].tolist() == ["Toy Story (1995)", "American Beauty (1999)"]
    first = (ml1m_dir / "ml-1m.txt").read_text().split("\n", 1)[0].split()      # user 1, oldest first
    movie = dict(zip(item_map["item_index"].to_list(), item_map["movie_id"].to_list(), strict=True))
    rows = np.flatnonzero(log.user_map.to_external(log.users) == int(first[0]))
    assert log.item_map.to_external(log.items[rows]).tolist() == [movie[int(i)] for i in first[1:]]
    assert np.all(np.diff(log.times[rows]) > 0)                                  # time is the position in the file


def _movies_dat(ml1m_dir) -> str:
    # The local movies.dat is UTF-8 with U+FFFD where the published latin-1 file has accents: write é there.
    return (ml1m_dir / "movies.dat").read_text(encoding="utf-8").replace("\ufffd", "é")


def test_ml1m_both_forms_give_the_same_log(ml1m_dir, tmp_path):
    """The first 300 users written as the sequence form and as the published form (ratings.dat in shuffled
    order with increasing timestamps, movies.dat in latin-1) read to the same users, items, order and titles."""
    lines = (ml1m_dir / "ml-1m.txt").read_text().splitlines()[:300]
    movie = dict(line.split("\t") for line in (ml1m_dir / "item_map.tsv").read_text().splitlines()[1:])
    sequences, published = tmp_path / "sequences", tmp_path / "published"
    sequences.mkdir()
    published.mkdir()
    (sequences / "ml-1m.txt").write_text("\n".join(lines) + "\n")
    (sequences / "item_map.tsv").write_bytes((ml1m_dir / "item_map.tsv").read_bytes())
    (sequences / "movies.dat").write_text(_movies_dat(ml1m_dir), encoding="utf-8")
    rows = [f"{fields[0]}::{movie[item]}::4::{1000 + position}"
            for fields in (line.split() for line in lines) for position, item in enumerate(fields[1:])]
    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    (published / "ratings.dat").write_text("\n".join(rows) + "\n")
    (published / "movies.dat").write_bytes(_movies_dat(ml1m_dir).encode("latin-1"))

    a, b = load_ml1m(sequences, verify_checksum=False), load_ml1m(published, verify_checksum=False)
    np.testing.assert_array_equal(a.item_map.external, b.item_map.external)
    np.testing.assert_array_equal(a.user_map.external, b.user_map.external)
    order_a, order_b = np.lexsort((a.times, a.users)), np.lexsort((b.times, b.users))
    np.testing.assert_array_equal(a.users[order_a], b.users[order_b])
    np.testing.assert_array_equal(a.items[order_a], b.items[order_b])
    assert a.item_titles.tolist() == b.item_titles.tolist()
    assert b.item_titles[b.item_map.to_index([570])[0]] == "Slingshot, The (Kédisbellan ) (1993)"   # latin-1 read
    with pytest.raises(ConfigError, match="ml-1m.txt has no ratings"):                 # only ratings.dat has them
        load_ml1m(sequences, False, Filters(min_rating=4))
    assert len(load_ml1m(published, False, Filters(min_rating=4))) == len(b)            # every rating here is a 4
    with pytest.raises(DataError, match="no events left after filter min_rating=5"):
        load_ml1m(published, False, Filters(min_rating=5))


def test_ml_latest_small_keeps_file_order_ties_and_titles(real, ml_latest_small_dir):
    log = real("ml-latest-small")
    assert log.item_map.to_external(log.items[:4]).tolist() == [1, 3, 6, 47]   # file order, not time order
    assert log.times[:2].tolist() == [964982703, 964981247]
    order = np.lexsort((log.times, log.users))                                 # stable: ties keep file order
    users, times = log.users[order], log.times[order]
    assert int(np.sum((users[1:] == users[:-1]) & (times[1:] == times[:-1]))) == 15_790
    titles = log.item_titles[log.item_map.to_index([1, 29, 73])].tolist()
    assert titles == ["Toy Story (1995)", "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
                      "Misérables, Les (1995)"]


def test_ml_latest_small_min_rating_keeps_the_higher_ratings(ml_latest_small_dir):
    log = load_dataset(DataConfig(dataset="ml-latest-small", data_dir=str(ml_latest_small_dir), min_rating=4.0))
    expected = pl.read_csv(ml_latest_small_dir / "ratings.csv").filter(pl.col("rating") >= 4.0).height
    assert len(log) == expected == log.source["events_after_min_rating"]


def test_amazon_has_no_titles_or_ratings(real, amazon_video_games_dir):
    log = real("amazon-video-games")
    assert log.item_titles is None
    assert log.item_map.to_external(log.items[:3]).tolist() == [6393, 13504, 14087]
    assert int(np.sum(np.bincount(log.users)[1:] < 3)) == 112
    with pytest.raises(ConfigError, match="video_games.txt has no ratings") as error:
        load_amazon_video_games(amazon_video_games_dir, filters=Filters(min_rating=4))
    one_line(error)


# Small stand-ins for each dataset's files: valid, but not the published ones.
FAKES = {
    "ml-1m": {"ml-1m.txt": "1 1 2\n", "item_map.tsv": "item_index\tmovie_id\n1\t10\n2\t20\n"},
    "ml-latest-small": {"ratings.csv": "userId,movieId,rating,timestamp\n1,10,4.0,5\n1,20,3.0,6\n"},
    "amazon-video-games": {"video_games.txt": "1 10\n1 20\n"},
}


def write(folder, files: dict[str, str]):
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("name", sorted(FAKES))
def test_a_copy_that_is_not_the_published_file_is_refused_in_one_line(name, tmp_path):
    folder = write(tmp_path / name, FAKES[name])
    with pytest.raises(DataError, match=r"checksum mismatch \(sha256 [0-9a-f]{64}, expected") as error:
        load_dataset(DataConfig(dataset=name, data_dir=str(folder)))
    assert "data.verify_checksum=false" in one_line(error)
    log = load_dataset(DataConfig(dataset=name, data_dir=str(folder), verify_checksum=False))
    assert (len(log), log.num_users, log.num_items) == (2, 1, 2)
    assert log.item_map.external.tolist() == [10, 20]                          # ml-1m: MovieIDs, not 1 and 2


def test_ml1m_ratings_dat_without_a_published_checksum_is_checked_by_its_count(tmp_path):
    folder = write(tmp_path / "ml-1m", {"ratings.dat": "1::10::5::978300760\n1::20::3::978302109\n"})
    with pytest.raises(DataError, match=r"ratings\.dat: 2 ratings, but the published MovieLens-1M has 1000209"):
        load_dataset(DataConfig(dataset="ml-1m", data_dir=str(folder)))
    log = load_dataset(DataConfig(dataset="ml-1m", data_dir=str(folder), verify_checksum=False, min_rating=4))
    assert log.item_map.external.tolist() == [10] and log.item_titles is None


@pytest.mark.parametrize(("files", "expected"), [
    ({"ml-1m.txt": "1 1 3\n", "item_map.tsv": "item_index\tmovie_id\n1\t10\n"},
     r"ml-1m\.txt:1: item 3 is not in item_map\.tsv"),
    ({"ml-1m.txt": "1 1\n", "item_map.tsv": "item_index\tmovie_id\n1\tx\n"},
     r"item_map\.tsv:2: column 2 \(movie\) is not an integer: 'x'"),
    ({"ratings.dat": "1::10::5\n"}, r"ratings\.dat:1: expected 4 fields"),
])
def test_bad_ml1m_files_are_one_line(tmp_path, files, expected):
    with pytest.raises(DataError, match=expected) as error:
        load_ml1m(write(tmp_path / "ml-1m", files), verify_checksum=False)
    one_line(error)


@pytest.mark.parametrize(("name", "expected"), [
    ("ml-1m", r"ml-1m/ratings\.dat: file not found \(--data-dir\) \(or ml-1m\.txt with item_map\.tsv\)"),
    ("ml-latest-small", r"ml-latest-small/ratings\.csv: file not found \(--data-dir\)"),
    ("amazon-video-games", r"amazon-video-games/video_games\.txt: file not found \(--data-dir\) \(or Video\.txt\)"),
])
def test_a_missing_folder_or_file_is_one_line(tmp_path, name, expected):
    with pytest.raises(DataError, match=r"nope: data folder not found \(--data-dir\)") as error:
        load_dataset(DataConfig(dataset=name, data_dir=str(tmp_path / "nope")))
    one_line(error)
    with pytest.raises(DataError, match=expected) as error:
        load_dataset(DataConfig(dataset=name, data_dir=str(write(tmp_path / name, {"other.txt": ""}))))
    one_line(error)


def test_train_by_name_with_no_column_options(ml_latest_small_dir, tmp_path, monkeypatch):
    """`seqrec train --data ml-latest-small --protocol loo-full`, the copy found through its variable; the
    bundle carries the titles."""
    monkeypatch.setenv("SEQREC_ML_LATEST_SMALL_DIR", str(ml_latest_small_dir))
    out = tmp_path / "run"
    done = CliRunner().invoke(app, ["train", "--data", "ml-latest-small", "--protocol", "loo-full", "--model", "pop",
                                    "--out", str(out), "--no-progress"])
    assert done.exit_code == 0, done.output
    report = json.loads((out / "metrics.json").read_text())
    assert report["dataset"]["num_events"] == 100_836 and report["dataset"]["sha256"].startswith("aa289ca8")
    assert 0 < report["metrics"]["loo-full"]["hr@10"] < 1
    top = recommend(load_bundle(out), users=[1], k=3)[0]
    assert len(top.titles) == 3 and all(top.titles)
