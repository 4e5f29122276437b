"""Splits of an event log into training sequences and evaluation cases."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqrec.data.interactions import Interactions
from seqrec.data.sequences import Sequences


@dataclass(frozen=True)
class EvalCases:
    """What the model is asked: for each case, the history before the target, and the target item.

    history: Sequences with one sequence per case (its users are the case users); targets: (B,).
    `exclude` holds the items that may not be ranked (e.g. the user's training items).
    """

    history: Sequences
    targets: np.ndarray
    exclude: Sequences

    @property
    def users(self) -> np.ndarray:
        return self.history.users

    def __len__(self) -> int:
        return len(self.targets)


@dataclass(frozen=True)
class Split:
    train: Sequences
    test: EvalCases


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


def _align(seqs: Sequences, users: np.ndarray) -> Sequences:
    """The sequences of `users` (in that order); a user without one gets an empty sequence."""
    pos = np.searchsorted(seqs.users, users).clip(max=max(len(seqs) - 1, 0))
    found = (len(seqs) > 0) & (seqs.users[pos] == users)
    lengths = np.where(found, seqs.lengths[pos], 0)
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    starts = np.repeat(seqs.indptr[pos] - indptr[:-1], lengths)
    return Sequences(users.astype(np.int64), indptr, seqs.items[np.arange(indptr[-1]) + starts])
