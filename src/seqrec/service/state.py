"""Each user's history as the service sees it: the bundle's, followed by the events stored since.

Events are kept per user ordered by (timestamp, store id), so replaying the store on start and
applying events as they arrive (in any order, from any replica) give the same state, provided
each event is applied once (EventStore.catch_up sees to that). Only the last L events per
user are needed for the model input; every applied item is remembered as seen. `state` gives
seqrec.recommend what it needs, so the service recommends through the library's one path.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from seqrec.bundle import Bundle
from seqrec.recommend import BundleHistories, UserState, last_items
from seqrec.service.store import StoredEvent


class LiveHistories:
    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self._stored = BundleHistories(bundle)
        self._recent: dict[Any, list[tuple[int, int, int]]] = {}   # key -> last L (timestamp, id, item index)
        self._seen: dict[Any, set[int]] = {}                      # key -> item indices from events
        self._lock = threading.Lock()

    def _keys(self, users: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
        """User indices and state keys: the index for known users, the id as text for new ones."""
        index = self.bundle.user_index(list(users))
        return index, [int(i) if i else str(u) for i, u in zip(index, users, strict=True)]

    def apply(self, events: Sequence[StoredEvent]) -> None:
        """Lay stored events over the users' histories; events of items the bundle does not know are skipped."""
        _, keys = self._keys([e.user for e in events])
        item_idx = self.bundle.item_index([e.item for e in events])
        L = self.bundle.L
        with self._lock:
            for event, key, item in zip(events, keys, item_idx.tolist(), strict=True):
                if not item:
                    continue                                       # kept in the store, unusable by the model
                recent = self._recent.setdefault(key, [])
                bisect.insort(recent, (event.timestamp, event.id, item))
                del recent[: max(len(recent) - L, 0)]
                self._seen.setdefault(key, set()).add(item)

    def unknown(self, events: Sequence[tuple[Any, Any, int]]) -> tuple[list[Any], list[Any]]:
        """(item ids, user ids) of (user, item, timestamp) events that the bundle does not know, each once, in order."""
        users, items = [e[0] for e in events], [e[1] for e in events]
        return _absent(items, self.bundle.item_index(items)), _absent(users, self.bundle.user_index(users))

    def state(self, users: Sequence[Any]) -> UserState:
        """The bundle's state of `users` with each one's events laid over it."""
        stored = self._stored.state(users)
        _, keys = self._keys(users)
        recent, known = stored.recent.copy(), stored.known.copy()
        rows, items = [stored.seen_rows], [stored.seen_items]
        with self._lock:
            for row, key in enumerate(keys):
                if key not in self._seen:
                    continue
                events = np.array([item for *_, item in self._recent[key]], np.int64)
                before = stored.recent[row]
                recent[row] = last_items([np.concatenate([before[before > 0], events])], self.bundle.L)[0]
                seen = np.fromiter(self._seen[key], np.int64)
                rows.append(np.full(len(seen), row, np.int64))
                items.append(seen)
                known[row] = True
        return UserState(stored.index, recent, np.concatenate(rows), np.concatenate(items), known)


def _absent(ids: list[Any], index: np.ndarray) -> list[Any]:
    return list(dict.fromkeys(i for i, found in zip(ids, index.tolist(), strict=True) if not found))
