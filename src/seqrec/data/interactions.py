"""Interactions: an event log as dense index arrays, with the maps back to external ids.

Index 0 is reserved: item 0 is padding, user 0 is "unknown". Real entities are 1..n.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqrec.data.keys import distinct_with_index


@dataclass(frozen=True)
class IdMap:
    """External ids <-> dense indices 1..n, in sorted order of the external ids."""

    external: np.ndarray                # (n,) sorted unique external ids; index i+1 <-> external[i]

    @classmethod
    def fit(cls, values: np.ndarray) -> tuple[IdMap, np.ndarray]:
        """Map `values` to dense indices; returns the map and the indices (same shape, >= 1)."""
        values = np.asarray(values)
        external, inverse = (distinct_with_index(values) if values.dtype.kind in "iu"
                             else np.unique(values, return_inverse=True))
        inverse = inverse.astype(np.int64, copy=False)
        inverse += 1                                     # in place: no second copy of a 10^7-row column
        return cls(external), inverse

    def __len__(self) -> int:
        return len(self.external)

    def to_index(self, values: np.ndarray) -> np.ndarray:
        """Dense indices of external ids; 0 for ids the map does not know."""
        values = np.asarray(values)        # strings are compared whole (casting to the map's width would cut them)
        values = values.astype(str) if self.external.dtype.kind == "U" else values.astype(self.external.dtype)
        pos = np.searchsorted(self.external, values).clip(max=max(len(self.external) - 1, 0))
        known = len(self.external) > 0 and self.external[pos] == values
        return np.where(known, pos + 1, 0).astype(np.int64)

    def to_external(self, indices: np.ndarray) -> np.ndarray:
        return self.external[np.asarray(indices) - 1]


@dataclass(frozen=True)
class Interactions:
    """One row per event. users, items: (N,) int64 dense indices; times: (N,) int64."""

    users: np.ndarray
    items: np.ndarray
    times: np.ndarray
    user_map: IdMap
    item_map: IdMap
    item_titles: np.ndarray | None = None  # (num_items + 1,) str, index 0 empty
    checksum: str = ""                     # sha256 of the source file, for provenance
    source: dict[str, Any] = field(default_factory=dict)  # file, format and event counts after each filter

    @property
    def num_users(self) -> int:
        return len(self.user_map)

    @property
    def num_items(self) -> int:
        return len(self.item_map)

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> Interactions:
        """The same log restricted to (and ordered by) `rows`; id maps are kept."""
        return Interactions(self.users[rows], self.items[rows], self.times[rows], self.user_map, self.item_map,
                            self.item_titles, self.checksum, self.source)
