"""Filters on an event table (rating threshold, duplicates, iterative k-core) and on Interactions
(users with too few events for a protocol). Each is vectorised; ties in time keep file order unless
`shuffle_ties` reorders them.

The event table is a Polars frame with columns line (source line, for messages), user, item,
time (int64) and optionally rating, in file order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from seqrec.data.interactions import IdMap, Interactions
from seqrec.errors import ConfigError, DataError

DEDUPE = ("none", "exact", "user-item")
SHORT_USERS = ("drop", "error")
TIES = ("file", "shuffle")
TIE_STREAM = 2**32 - 2      # default_rng((seed, TIE_STREAM)) orders ties, apart from the run's other draws


@dataclass(frozen=True)
class Filters:
    min_rating: float | None = None     # keep events with rating >= min_rating
    dedupe: str = "exact"               # none | exact: drop repeated (user, item, time) | user-item: keep the first
    k_core: int = 0                     # iterate until every user and every item has >= k_core events (0: off)


def apply_filters(frame: pl.DataFrame, filters: Filters, where: str) -> tuple[pl.DataFrame, dict[str, int]]:
    """The filtered table (file order kept) and the number of events after each step.

    Raises DataError naming the filter that left no events.
    """
    counts = {"events_read": frame.height}
    if frame.height == 0:
        raise DataError(f"{where}: no events in the file")
    steps = []
    if filters.min_rating is not None:
        if "rating" not in frame.columns:
            raise ConfigError("data.min_rating needs a rating column (--rating-col)")
        steps.append((f"min_rating={filters.min_rating:g}", lambda f: f.filter(pl.col("rating") >= filters.min_rating)))
    if filters.dedupe == "exact":
        steps.append(("dedupe=exact", lambda f: f.unique(["user", "item", "time"], keep="first", maintain_order=True)))
    elif filters.dedupe == "user-item":
        steps.append(("dedupe=user-item", lambda f: f.with_columns(pl.int_range(pl.len()).alias("_row"))
                      .sort("time", "_row").unique(["user", "item"], keep="first").sort("_row").drop("_row")))
    if filters.k_core > 1:
        steps.append((f"k_core={filters.k_core}", lambda f: k_core(f, filters.k_core)))
    for name, step in steps:
        frame = step(frame)
        counts[f"events_after_{name.split('=')[0]}"] = frame.height
        if frame.height == 0:
            raise DataError(f"{where}: no events left after filter {name} ({counts['events_read']} read)")
    return frame, counts


def k_core(frame: pl.DataFrame, k: int) -> pl.DataFrame:
    """The largest sub-log in which every user and every item has >= k events (repeat until stable)."""
    while True:
        kept = frame.filter((pl.len().over("user") >= k) & (pl.len().over("item") >= k))
        if kept.height == frame.height:
            return kept
        frame = kept


def compact(log: Interactions, keep: np.ndarray) -> Interactions:
    """The events where `keep` (bool (N,)) is True, with users and items re-indexed densely (1..n)."""
    user_map, users = IdMap.fit(log.user_map.to_external(log.users[keep]))
    item_map, items = IdMap.fit(log.item_map.to_external(log.items[keep]))
    titles = None
    if log.item_titles is not None:
        titles = np.r_[np.array([""], dtype=object), log.item_titles[log.item_map.to_index(item_map.external)]]
    return Interactions(users, items, log.times[keep], user_map, item_map, titles, log.checksum, log.source)


def require_events(log: Interactions, min_events: int, policy: str, protocol: str) -> tuple[Interactions, int]:
    """Users with fewer than `min_events` events: dropped (policy 'drop', count returned) or an error ('error')."""
    counts = np.bincount(log.users, minlength=log.num_users + 1)
    short = np.flatnonzero(counts[1:] < min_events) + 1
    if short.size == 0:
        return log, 0
    if policy == "error":
        user = log.user_map.to_external(short[:1]).tolist()[0]
        raise DataError(f"user {user!r} has {counts[short[0]]} event(s) but protocol {protocol} needs at least "
                        f"{min_events} per user ({short.size} such users; data.short_users='drop' drops them)")
    kept = compact(log, np.isin(log.users, short, invert=True))
    if len(kept) == 0:
        raise DataError(f"no events left after dropping the {short.size} users with fewer than {min_events} events "
                        f"(protocol {protocol} needs at least {min_events} per user)")
    return kept, int(short.size)


def shuffle_ties(log: Interactions, seed: int) -> Interactions:
    """The log with each user's events of equal time in a random order drawn from `seed`; every other event keeps its
    row. Files often list simultaneous events (a bulk rating) by item id, an order a sequence model can learn.

    by_time lists the rows by (user, time, row), shuffled by (user, time, random key): both hold each tie group
    at the same positions, so row by_time[k] takes event shuffled[k].
    """
    by_time = np.lexsort((np.arange(len(log)), log.times, log.users))
    shuffled = np.lexsort((np.random.default_rng((seed, TIE_STREAM)).permutation(len(log)), log.times, log.users))
    rows = np.empty_like(by_time)
    rows[by_time] = shuffled
    return log.take(rows)
