"""Splits of an event log into training sequences and evaluation cases, one per protocol family.

Every split orders a user's events by time, ties broken by file order (a stable sort on the rows),
and builds training sequences only from training events: no validation or test event ever
reaches a training window, as input or as target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqrec.data.interactions import Interactions
from seqrec.data.sequences import Sequences


@dataclass(frozen=True)
class EvalCases:
    """What the model is asked: for each case, the history before the target(s), and the target(s).

    history: Sequences with one sequence per case (its users are the case users); targets: (B,) one
    item per case, or Sequences with a set of items per case (caser-paper), aligned with history.
    `exclude` holds the items that may not be ranked (e.g. the user's training items).
    """

    history: Sequences
    targets: np.ndarray | Sequences
    exclude: Sequences

    @property
    def users(self) -> np.ndarray:
        return self.history.users

    def __len__(self) -> int:
        return len(self.history)


@dataclass(frozen=True)
class Split:
    train: Sequences
    test: EvalCases
    valid: EvalCases | None = None    # None: the protocol has no validation split (d2l)
    before_test: Sequences | None = None  # what a refit trains on, when not test.history (sessions)

    @property
    def refit_sequences(self) -> Sequences:
        """Training + validation items: what a model retrained for the test stage may learn from."""
        return self.test.history if self.before_test is None else self.before_test


def stages(split: Split) -> dict[str, EvalCases]:
    """The split's evaluation cases by stage: 'test', then 'valid' when the split has one."""
    return {"test": split.test} | ({"valid": split.valid} if split.valid is not None else {})


def chronological(log: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by (user, time, file order), each row's 0-based position in its user's sequence,
    and the user's sequence length: (N,) each.

    users [2, 1, 1, 2], times [5, 9, 3, 5] -> rows [2, 1, 0, 3], position [0, 1, 0, 1], length [2, 2, 2, 2]
    """
    rows = np.lexsort((np.arange(len(log)), log.times, log.users))
    users = log.users[rows]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(rows) else np.zeros(0, np.int64)
    lengths = np.diff(np.r_[starts, len(rows)])
    position = np.arange(len(rows)) - np.repeat(starts, lengths)
    return rows, position, np.repeat(lengths, lengths)


def _part(log: Interactions, rows: np.ndarray, keep: np.ndarray) -> Sequences:
    return Sequences.from_sorted(log.users[rows[keep]], log.items[rows[keep]])


def d2l_split(log: Interactions) -> Split:
    """The book's `seq-aware` split (PROTOCOLS.md section 1).

    Per user, the row with the latest time is the test item (first in file order on ties);
    every other row is training data, sorted by time (stable: ties keep file order).
    """
    rows = np.arange(len(log))
    latest_first = np.lexsort((rows, -log.times, log.users))        # by user, newest first, file order
    is_first = np.r_[True, log.users[latest_first][1:] != log.users[latest_first][:-1]]
    test_rows = latest_first[is_first]                               # one per user, by user index
    train_mask = np.ones(len(log), bool)
    train_mask[test_rows] = False
    train_rows = rows[train_mask]
    train_rows = train_rows[np.lexsort((train_rows, log.times[train_rows], log.users[train_rows]))]
    train = Sequences.from_sorted(log.users[train_rows], log.items[train_rows])
    history = _align(train, log.users[test_rows])
    return Split(train, EvalCases(history, log.items[test_rows], history))


def loo_split(log: Interactions) -> Split:
    """Leave-one-out (PROTOCOLS.md sections 2-3): last event test, second-to-last validation, rest training.

    Test input is the history up to the test item (validation item included); validation input is
    the training sequence. Each case excludes the items of its own history. Needs >= 3 events per
    user (callers drop or reject shorter users first, see `seqrec.data.filters.require_events`).

    one user, items [a, b, c, d] in time order -> train [a, b]; valid: [a, b] -> c; test: [a, b, c] -> d
    """
    rows, position, length = chronological(log)
    from_end = length - 1 - position
    train = _part(log, rows, from_end >= 2)
    test_history = _part(log, rows, from_end >= 1)
    valid = EvalCases(train, log.items[rows[from_end == 1]], train)
    test = EvalCases(test_history, log.items[rows[from_end == 0]], test_history)
    return Split(train, test, valid)


def caser_paper_split(log: Interactions) -> Split:
    """The Caser paper's split (PROTOCOLS.md section 4): per user, chronological 70% / 10% / 20%.

    With n events: n_test = max(1, floor(0.2 n)), n_valid = max(1, floor(0.1 n)), the rest (>= 1 for
    n >= 3) is training. Validation targets are predicted from the training items; test targets from
    training + validation items, which are also the items removed from the ranking. Targets are sets
    (a repeated item counts once). n = 10 -> 7 / 1 / 2; n = 3 -> 1 / 1 / 1.
    """
    rows, position, length = chronological(log)
    n_test, n_valid = np.maximum(1, length * 2 // 10), np.maximum(1, length // 10)
    n_train = length - n_test - n_valid
    train = _part(log, rows, position < n_train)
    before_test = _part(log, rows, position < n_train + n_valid)
    valid_items = _part(log, rows, (position >= n_train) & (position < n_train + n_valid))
    valid = EvalCases(train, _unique_per_user(valid_items), train)
    test = EvalCases(before_test, _unique_per_user(_part(log, rows, position >= n_train + n_valid)), before_test)
    return Split(train, test, valid)


def _unique_per_user(seqs: Sequences) -> Sequences:
    """Each sequence with repeated items removed (first occurrence kept, order kept)."""
    keys = seqs.row_of_each_item() * (int(seqs.items.max(initial=0)) + 1) + seqs.items
    first = np.sort(np.unique(keys, return_index=True)[1])
    return Sequences.from_sorted(np.repeat(seqs.users, seqs.lengths)[first], seqs.items[first])


def _align(seqs: Sequences, users: np.ndarray) -> Sequences:
    """The sequences of `users` (in that order); a user without one gets an empty sequence."""
    pos = np.searchsorted(seqs.users, users).clip(max=max(len(seqs) - 1, 0))
    found = (len(seqs) > 0) & (seqs.users[pos] == users)
    lengths = np.where(found, seqs.lengths[pos], 0)
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    starts = np.repeat(seqs.indptr[pos] - indptr[:-1], lengths)
    return Sequences(users.astype(np.int64), indptr, seqs.items[np.arange(indptr[-1]) + starts])
