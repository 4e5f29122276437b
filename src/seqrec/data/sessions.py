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


def session_split(log: Interactions, test_fraction: float = 0.2, valid_fraction: float = 0.1) -> Split:
    """Split sessions by the time they end: the last `test_fraction` of them are test, the `valid_fraction`
    before those validation, the others train.

    Validation events whose item never occurs in training are dropped, and so are test events whose item
    occurs in neither training nor validation sessions (no model can rank them); so are sessions left
    with fewer than two events. Each remaining position t >= 1 of a validation or test session is one
    case: history = the session's first t items, target = item t, exclude = the history. A refit
    (train.refit) trains on the training and validation sessions. valid_fraction=0: no validation.
    """
    if not (0 < test_fraction < 1 and 0 <= valid_fraction < 1 - test_fraction):
        raise DataError(f"session split fractions must satisfy 0 < test ({test_fraction}) < 1 and "
                        f"0 <= validation ({valid_fraction}) < 1 - test")
    order = np.lexsort((np.arange(len(log)), log.times, log.users))
    sessions, items, times = log.users[order], log.items[order], log.times[order]
    ends = np.zeros(log.num_users + 1, dtype=np.int64)
    np.maximum.at(ends, sessions, times)
    session_ends = ends[np.unique(sessions)]
    test_cut, valid_cut = (np.quantile(session_ends, 1 - f, method="lower")
                           for f in (test_fraction, test_fraction + valid_fraction))
    stage = np.searchsorted(np.array([valid_cut, test_cut]), ends[sessions], side="left").astype(np.int8)
    train = Sequences.from_sorted(sessions[stage == 0], items[stage == 0])       # stage 0 train, 1 valid, 2 test
    before_test = Sequences.from_sorted(sessions[stage < 2], items[stage < 2])
    valid = _prefix_cases_of(sessions, items, stage == 1, seen=train)
    test = _prefix_cases_of(sessions, items, stage == 2, seen=before_test)
    if len(train) == 0 or test is None or (valid_fraction and valid is None):
        raise DataError(f"the session split left {len(train)} training, {_session_count(valid)} validation and "
                        f"{_session_count(test)} test sessions; use more data or another test_fraction / session gap")
    return Split(train, test, valid, before_test=before_test)


def _prefix_cases_of(sessions: np.ndarray, items: np.ndarray, rows: np.ndarray, seen: Sequences) -> EvalCases | None:
    """prefix_cases of the sessions of `rows` (sorted by session), their items unseen in `seen` dropped."""
    known = np.zeros(int(items.max(initial=0)) + 1, dtype=bool)                # seen.items come from items
    known[seen.items] = True
    keep = rows & known[items]
    kept = _drop_short(Sequences.from_sorted(sessions[keep], items[keep]), minimum=2)
    return prefix_cases(kept) if len(kept) else None


def _session_count(cases: EvalCases | None) -> int:
    return 0 if cases is None else len(np.unique(cases.history.users))


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
