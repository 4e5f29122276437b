"""Sessions instead of users: cut a log into sessions, split by time, and a synthetic session log.

A session has no long history and no user identity the model can use: each next item of a test
session is predicted from its prefix alone (PROTOCOLS.md section 5).
"""

from __future__ import annotations

import numpy as np

from seqrec.data.interactions import IdMap, Interactions
from seqrec.data.sequences import Sequences
from seqrec.data.split import EvalCases, Split
from seqrec.errors import DataError


def sessionize(log: Interactions, gap_seconds: float) -> Interactions:
    """Cut each user's events into sessions wherever `gap_seconds` pass without an event.

    Returns a log, ordered by user then time, whose "users" are sessions; each session's external
    id is "<user>:<n>", n counting the user's sessions from 0.
    """
    if gap_seconds <= 0:
        raise DataError(f"the session gap must be positive, got {gap_seconds}")
    order = np.lexsort((np.arange(len(log)), log.times, log.users))
    users, times = log.users[order], log.times[order]
    new_user = np.r_[True, users[1:] != users[:-1]]
    new_session = new_user | np.r_[True, np.diff(times) > gap_seconds]
    session = np.cumsum(new_session)                                         # 1..S in time order
    first_of_user = np.maximum.accumulate(np.where(new_user, session, 0))
    names = np.char.add(np.char.add(log.user_map.to_external(users).astype(str), ":"),
                        (session - first_of_user).astype(str))
    session_map, sessions = IdMap.fit(names)
    return Interactions(sessions, log.items[order], times, session_map, log.item_map, log.item_titles, log.checksum)


def session_split(log: Interactions, test_fraction: float = 0.2) -> Split:
    """Sessions that end after the time cut-off are test; the others train.

    The cut-off is the end time below which (1 - test_fraction) of the sessions end. Test events
    whose item never occurs in training are dropped (no model can rank them), and so are test
    sessions left with fewer than two events. Each remaining position t >= 1 of a test session is
    one case: history = the session's first t items, target = item t, exclude = the history.
    """
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = np.lexsort((np.arange(len(log)), log.times, log.users))
    sessions, items, times = log.users[order], log.items[order], log.times[order]
    ends = np.zeros(log.num_users + 1, dtype=np.int64)
    np.maximum.at(ends, sessions, times)
    cutoff = np.quantile(ends[np.unique(sessions)], 1 - test_fraction, method="lower")
    is_test = ends[sessions] > cutoff
    train = Sequences.from_sorted(sessions[~is_test], items[~is_test])
    known = np.zeros(log.num_items + 1, dtype=bool)
    known[train.items] = True
    keep = is_test & known[items]
    test = Sequences.from_sorted(sessions[keep], items[keep])
    test = _drop_short(test, minimum=2)
    if len(train) == 0 or len(test) == 0:
        raise DataError(f"the session split left {len(train)} training and {len(test)} test sessions; "
                        "use more data or another test_fraction / session gap")
    return Split(train, prefix_cases(test))


def _drop_short(seqs: Sequences, minimum: int) -> Sequences:
    keep = seqs.lengths >= minimum
    items = seqs.items[np.repeat(keep, seqs.lengths)]
    return Sequences(seqs.users[keep], np.r_[0, np.cumsum(seqs.lengths[keep])].astype(np.int64), items)


def prefix_cases(seqs: Sequences) -> EvalCases:
    """One case per position t >= 1 of each sequence: history items[:t], target items[t]."""
    lengths = seqs.lengths
    case_seq = np.repeat(np.arange(len(seqs)), lengths - 1)                  # (C,)
    t = np.arange(len(case_seq)) - np.repeat(np.cumsum(lengths - 1) - (lengths - 1), lengths - 1) + 1
    starts = seqs.indptr[case_seq]
    indptr = np.r_[0, np.cumsum(t)].astype(np.int64)
    gather = np.arange(indptr[-1]) - np.repeat(indptr[:-1], t) + np.repeat(starts, t)
    history = Sequences(seqs.users[case_seq], indptr, seqs.items[gather])
    return EvalCases(history, seqs.items[starts + t], history)


def synthetic_sessions(num_sessions: int = 2000, num_items: int = 300, num_patterns: int = 30,
                       pattern_length: int = 8, noise: float = 0.1, seed: int = 0) -> Interactions:
    """Sessions that each follow one of `num_patterns` planted item paths from a random point.

    Every session is a contiguous stretch (3..pattern_length items) of a random pattern, with each
    item replaced by a uniform random one with probability `noise`. Each session is a "user"; sessions
    are an hour apart and their events a minute apart, so a 30-minute gap would cut them the same way.
    """
    rng = np.random.default_rng(seed)
    patterns = rng.integers(1, num_items + 1, size=(num_patterns, pattern_length))
    lengths = rng.integers(3, pattern_length + 1, size=num_sessions)
    starts = rng.integers(0, pattern_length - lengths + 1)
    which = rng.integers(0, num_patterns, size=num_sessions)
    session = np.repeat(np.arange(num_sessions), lengths)
    offset = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    items = patterns[which[session], starts[session] + offset]
    items = np.where(rng.random(len(items)) < noise, rng.integers(1, num_items + 1, len(items)), items)
    times = session * 3600 + offset * 60
    user_map, users = IdMap.fit(session + 1)
    item_map, dense = IdMap.fit(items)
    return Interactions(users, dense, times.astype(np.int64), user_map, item_map)
