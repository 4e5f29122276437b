"""Seeded, vectorised negative sampling: uniform over the items a user has not interacted with."""

from __future__ import annotations

import numpy as np

from seqrec.data.keys import contains, distinct
from seqrec.data.sequences import Sequences
from seqrec.errors import SeqrecError


class NegativeSampler:
    """Draws items uniformly from 1..num_items, excluding each user's `seen` items (exactly, by rejection)."""

    def __init__(self, seen: Sequences, num_items: int) -> None:
        self.num_items = num_items
        self._stride = num_items + 1
        users = np.repeat(seen.users, seen.lengths)
        self._keys = distinct(users * self._stride + seen.items)      # sorted distinct (user, item) pairs
        self.distinct = np.bincount(self._keys // self._stride)        # distinct items per user index
        full = np.flatnonzero(self.distinct >= num_items)
        if full.size:
            raise SeqrecError(f"user index {full[0]} has interacted with every one of the {num_items} items, so no "
                              "negative can be sampled for it; use a full loss (train.loss=softmax)")

    def is_seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return contains(self._keys, users * self._stride + items)

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """(len(users), n) negatives; rejected draws are redrawn until none is a seen item."""
        users = np.repeat(users[:, None], n, axis=1)
        out = rng.integers(1, self.num_items + 1, size=users.shape)
        redo = self.is_seen(users, out)
        while redo.any():
            out[redo] = rng.integers(1, self.num_items + 1, size=int(redo.sum()))
            redo[redo] = self.is_seen(users[redo], out[redo])
        return out
