"""Loaders for the public datasets beyond MovieLens-100K, each from a folder `seqrec.datasets.resolve` found.

- ``ml-1m``: the official `ml-1m.zip` files (`ratings.dat`, `UserID::MovieID::Rating::Timestamp`), or
  the sequence form `ml-1m.txt` (one line per user, `user item item ...`, oldest first, items
  renumbered) with `item_map.tsv` (`item<TAB>MovieID`, one header line). Items are mapped back to
  MovieIDs, so both forms index the same items; `movies.dat` (`MovieID::Title::Genres`, UTF-8 or the
  published latin-1) gives titles. Without timestamps, time is the position in the file.
- ``ml-latest-small``: GroupLens CSVs, `ratings.csv` (userId, movieId, rating, timestamp) and
  `movies.csv` for titles. Every rating is an event (`data.min_rating` keeps the higher ones);
  ties in time keep file order.
- ``amazon-video-games``: the SASRec paper's preprocessed Amazon Video Games reviews, `user item` per
  line, each user's lines together and in time order, no timestamps and no titles.

Every loader checks its main file's sha256 (`verify_checksum`) and returns Interactions in file order.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import polars as pl

from seqrec.data.filters import Filters
from seqrec.data.interactions import Interactions
from seqrec.data.movielens import RATING_COLUMNS, align_titles, read_delimited_integers, read_titles, to_log
from seqrec.data.readers import Columns, canonical_integers, read_bytes, read_events
from seqrec.datasets import REMOTES, check_folder, verify_file
from seqrec.errors import DataError

ML_LATEST_COLUMNS = Columns(user="userId", item="movieId", time="timestamp", rating="rating")


def _movie_ids(frame: pl.DataFrame, path: Path, map_path: Path) -> pl.DataFrame:
    """`frame` with its renumbered items replaced by the MovieIDs `map_path` (item<TAB>MovieID) gives them."""
    table = read_delimited_integers(map_path, "\t", ("item", "movie"), header=True)
    keys, movies = table["item"].to_numpy(), table["movie"].to_numpy()
    if len(np.unique(keys)) < len(keys):
        raise DataError(f"{map_path}: an item is listed more than once (file corrupt?)")
    order = np.argsort(keys)
    items = frame["item"].to_numpy()
    pos = np.searchsorted(keys[order], items).clip(max=len(keys) - 1)
    if (bad := np.flatnonzero(keys[order][pos] != items)).size:
        raise DataError(f"{path}:{frame['line'][int(bad[0])]}: item {items[bad[0]]} is not in {map_path.name}")
    return frame.with_columns(item=pl.Series(movies[order][pos]))


def load_ml1m(folder: Path, verify_checksum: bool = True, filters: Filters | None = None) -> Interactions:
    """MovieLens-1M as Interactions in file order, from `ratings.dat` or from `ml-1m.txt` + `item_map.tsv`.

    Both forms give MovieIDs as item ids and UserIDs as user ids. `ratings.dat` has no published
    checksum (a download is verified through its archive), so with `verify_checksum` a local copy
    must hold the published number of ratings instead.
    """
    remote = REMOTES["ml-1m"]
    form = check_folder(remote, folder, "ml-1m loader")
    path = folder / form[0]
    if form == ("ratings.dat",):
        frame = read_delimited_integers(path, "::", RATING_COLUMNS).rename({"timestamp": "time"})
        frame = frame.with_row_index("line", offset=1)
        checksum = verify_file(path, remote, verify_checksum)
        if verify_checksum and frame.height != remote.num_events:
            raise DataError(f"{path}: {frame.height} ratings, but the published {remote.title} has "
                            f"{remote.num_events} (set data.verify_checksum=false to use it anyway)")
    else:
        frame = read_events(path, "sequences", numeric_ids=True)
        checksum = verify_file(path, remote, verify_checksum)
        frame = _movie_ids(frame, path, folder / form[1])
    log = to_log(frame, path, checksum, remote.name, filters)
    titles = read_titles(folder / "movies.dat", log.item_map, "::", ("utf-8", "latin-1"))
    return dataclasses.replace(log, item_titles=titles)


def _csv_titles(path: Path, log: Interactions) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        table = pl.read_csv(io.BytesIO(read_bytes(path)), columns=["movieId", "title"], infer_schema=False)
    except pl.exceptions.PolarsError as err:
        raise DataError(f"{path}: cannot be read as csv: {str(err).splitlines()[0]}") from None
    return align_titles(canonical_integers(table["movieId"]), table["title"], log.item_map)


def load_ml_latest_small(folder: Path, verify_checksum: bool = True, filters: Filters | None = None) -> Interactions:
    """MovieLens latest-small as Interactions in file order, titles from `movies.csv`."""
    remote = REMOTES["ml-latest-small"]
    path = folder / check_folder(remote, folder, "ml-latest-small loader")[0]
    frame = read_events(path, "csv", ML_LATEST_COLUMNS, numeric_ids=True)
    checksum = verify_file(path, remote, verify_checksum)
    log = to_log(frame, path, checksum, remote.name, filters)
    return dataclasses.replace(log, item_titles=_csv_titles(folder / "movies.csv", log))


def load_amazon_video_games(folder: Path, verify_checksum: bool = True, filters: Filters | None = None
                            ) -> Interactions:
    """The SASRec paper's Amazon Video Games file as Interactions in file order (time = line number)."""
    remote = REMOTES["amazon-video-games"]
    path = folder / check_folder(remote, folder, "amazon-video-games loader")[0]
    frame = read_events(path, "sequences", numeric_ids=True)
    return to_log(frame, path, verify_file(path, remote, verify_checksum), remote.name, filters)
