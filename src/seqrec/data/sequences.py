"""Per-user item sequences in CSR form, training windows and model inputs, all vectorised."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

ArrayLike = TypeVar("ArrayLike")          # a numpy array or a torch tensor: Windows.split takes either


@dataclass(frozen=True)
class Sequences:
    """Item sequences of several users, in time order, concatenated.

    users: (U,) user indices; indptr: (U + 1,) offsets; items: (indptr[-1],) item indices.
    Sequence u is items[indptr[u]:indptr[u + 1]].
    """

    users: np.ndarray
    indptr: np.ndarray
    items: np.ndarray

    @classmethod
    def from_sorted(cls, users: np.ndarray, items: np.ndarray) -> Sequences:
        """Group rows already sorted by user (then time) into sequences."""
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.zeros(0, np.int64)
        indptr = np.r_[starts, len(users)].astype(np.int64)
        return cls(users[starts].astype(np.int64), indptr, items.astype(np.int64))

    def __len__(self) -> int:
        return len(self.users)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def row_of_each_item(self) -> np.ndarray:
        """(nnz,) the sequence number each item belongs to."""
        return np.repeat(np.arange(len(self)), self.lengths)

    def last(self, L: int) -> np.ndarray:
        """(U, L) the last L items of each sequence, left-padded with 0."""
        return _gather_ending_at(self.items, self.indptr[1:] - 1, self.indptr[:-1], L)


def _gather_ending_at(items: np.ndarray, ends: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """(len(ends), width): items[end - width + 1 .. end] per row, 0 where the index falls before `starts`."""
    index = ends[:, None] - np.arange(width - 1, -1, -1)[None, :]        # (W, width)
    valid = index >= starts[:, None]
    return np.where(valid, items[np.where(valid, index, 0)] if len(items) else 0, 0).astype(np.int64)


@dataclass(frozen=True)
class Windows:
    """Training examples as offsets into one item array: nothing is copied per example.

    Example w is the `width` items of the training sequences ending at items[ends[w]], left-padded
    with 0 before starts[w] (the first item of its sequence): memory is linear in events, not in
    events x width. `layout` says how an example splits into inputs and targets:
    "next": L inputs then T targets (the L inputs are the last L of the first width - T items);
    "positions": L + 1 items, inputs[:, t] = items[:, t] and targets[:, t] = items[:, t + 1] (0 after padding);
    "masked": L items, inputs and targets alike (the regime hides some).

    users, ends, starts: (W,) int64; items: (N,) int64.
    """

    users: np.ndarray
    ends: np.ndarray
    starts: np.ndarray
    items: np.ndarray
    layout: str
    width: int
    L: int
    T: int

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), width) the items of examples `rows`."""
        return _gather_ending_at(self.items, self.ends[rows], self.starts[rows], self.width)

    def split(self, chunk: ArrayLike) -> tuple[ArrayLike, ArrayLike]:
        """(inputs, targets) of examples (B, width), numpy arrays or tensors alike."""
        if self.layout == "next":
            return chunk[:, self.width - self.T - self.L: self.width - self.T], chunk[:, self.width - self.T:]
        if self.layout == "positions":              # chunk may be cut to fewer than width columns
            inputs = chunk[:, :-1]
            return inputs, chunk[:, 1:] * (inputs != 0)
        return chunk, chunk

    @property
    def sizes(self) -> np.ndarray:
        """(W,) how many real (not padding) items each example has, at most width."""
        return np.minimum(self.ends - self.starts + 1, self.width)

    @property
    def inputs(self) -> np.ndarray:
        """(W, L) every example's inputs, materialised (for tests and counting models)."""
        return self.split(self.take(np.arange(len(self))))[0]

    @property
    def targets(self) -> np.ndarray:
        """(W, T) or (W, L) every example's targets, materialised."""
        return self.split(self.take(np.arange(len(self))))[1]


def _examples(seqs: Sequences, counts: np.ndarray, first_end: np.ndarray, step: int) -> tuple[np.ndarray, ...]:
    """users, ends, starts of `counts` examples per sequence, ending at first_end + k * step (k = 0, 1, ...)."""
    seq = np.repeat(np.arange(len(seqs)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return seqs.users[seq], first_end[seq] + offset * step, seqs.indptr[:-1][seq]


def make_windows(seqs: Sequences, L: int, T: int = 1, padded: bool = False) -> Windows:
    """Every contiguous run of L + T items of each sequence (stride 1): L inputs, then T targets.

    A sequence with n items yields n - L - T + 1 windows; one with T + 1 <= n < L + T yields one
    window whose inputs are left-padded with 0; one with n <= T yields none. `padded` adds the
    windows whose targets start before position L: n - T windows, the first with one input item,
    so every item after the first is a target (of T windows). A target always has an item before
    it, so L = 0 (a model that reads no history) gives the windows of L = 1 with empty inputs (W, 0).
    """
    width, lengths = max(L, 1) + T, seqs.lengths
    if padded:
        counts = np.maximum(lengths - T, 0)
        first_end = seqs.indptr[:-1] + T                                 # one input, then T targets
    else:
        counts = np.where(lengths >= width, lengths - width + 1, (lengths > T).astype(np.int64))
        first_end = seqs.indptr[:-1] + np.minimum(lengths, width) - 1    # end of each sequence's first window
    return Windows(*_examples(seqs, counts, first_end, 1), seqs.items, "next", width, L, T)


def make_chunks(seqs: Sequences, width: int, stride: int, layout: str) -> Windows:
    """Chunks of `width` items taken from the end of each sequence every `stride` items, left-padded with 0.

    Consecutive chunks overlap by width - stride items, so each item after a sequence's first
    width - stride is the newest-but-overlap of exactly one chunk.
    [1, 2, 3, 4, 5, 6], width=4, stride=3  ->  [[3, 4, 5, 6], [0, 1, 2, 3]]
    """
    lengths, overlap = seqs.lengths, width - stride
    counts = np.where(lengths > overlap, -(-(lengths - overlap) // stride), 0)
    users, ends, starts = _examples(seqs, counts, seqs.indptr[1:] - 1, -stride)
    L = width - 1 if layout == "positions" else width
    return Windows(users, ends, starts, seqs.items, layout, width, L, width - L)


def make_position_windows(seqs: Sequences, L: int) -> Windows:
    """Chunks of L + 1 items for models trained at every position: targets[:, t] follows inputs[:, t].

    Chunks are taken from the end of each sequence with stride L, so every transition of a
    sequence is a target exactly once; a position whose input is padding gets target 0 (no loss).
    [1, 2, 3, 4, 5, 6], L=3  ->  inputs [[3, 4, 5], [0, 1, 2]], targets [[4, 5, 6], [0, 2, 3]]
    """
    return make_chunks(seqs, L + 1, L, "positions")
