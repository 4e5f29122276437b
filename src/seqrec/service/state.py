"""Each user's recent items as the service sees them: the bundle's history followed by new events.

Events are kept per user ordered by (timestamp, store id), so replaying the store on start and
applying events as they arrive (in any order) give the same state. Only the last L events per
user are needed for the model input; every applied item is remembered as seen.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqrec.bundle import Bundle
from seqrec.errors import SeqrecError
from seqrec.recommend import UnknownUserError, decode, last_items, rank
from seqrec.service.store import StoredEvent


@dataclass(frozen=True)
class Answer:
    user: Any
    items: list[Any]
    scores: list[float]
    titles: list[str] | None
    unknown_items: list[Any]


class LiveHistories:
    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self._recent: dict[Any, list[tuple[int, int, int]]] = {}   # key -> last L (timestamp, id, item index)
        self._seen: dict[Any, set[int]] = {}                      # key -> item indices from events
        self._lock = threading.Lock()

    def _keys(self, users: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
        """User indices and state keys: the index for known users, the id as text for new ones."""
        index = self.bundle.user_index(list(users))
        return index, [int(i) if i else str(u) for i, u in zip(index, users, strict=True)]

    def apply(self, events: Sequence[StoredEvent]) -> tuple[list[Any], list[Any]]:
        """Apply stored events; returns (unknown item ids, new user ids), each distinct, in order."""
        user_idx, keys = self._keys([e.user for e in events])
        item_idx = self.bundle.item_index([e.item for e in events])
        L = self.bundle.L
        with self._lock:
            for event, key, item in zip(events, keys, item_idx.tolist(), strict=True):
                if not item:
                    continue                                       # kept in the store, unusable by the model
                recent = self._recent.setdefault(key, [])
                bisect.insort(recent, (event.timestamp, event.id, item))
                del recent[:-L]
                self._seen.setdefault(key, set()).add(item)
        unknown = [e.item for e, i in zip(events, item_idx, strict=True) if not i]
        new = [e.user for e, i in zip(events, user_idx, strict=True) if not i]
        return list(dict.fromkeys(unknown)), list(dict.fromkeys(new))

    def recommend(self, user: Any | None, items: Sequence[Any] | None, k: int, exclude_seen: bool) -> Answer:
        """Top-k for a user (their live recent items) or for given recent items (replacing them)."""
        user_idx, recent, seen = 0, np.zeros(0, np.int64), np.zeros(0, np.int64)
        if user is not None:
            index, keys = self._keys([user])
            user_idx = int(index[0])
            with self._lock:
                events = [item for *_, item in self._recent.get(keys[0], ())]
                seen = np.fromiter(self._seen.get(keys[0], ()), np.int64)
            stored = self.bundle.histories.last[user_idx]
            recent = np.concatenate([stored[stored > 0], np.array(events, np.int64)])
        unknown: list[Any] = []
        if items:
            item_idx = self.bundle.item_index(list(items))
            unknown = list(dict.fromkeys(i for i, j in zip(items, item_idx, strict=True) if not j))
            given = item_idx[item_idx > 0]
            if len(given):
                recent, seen = given, np.concatenate([seen, given])
        if not len(recent):
            what = f"unknown user {user!r} with no events" if user is not None else "no known items"
            error = UnknownUserError if user is not None else SeqrecError
            raise error(f"{what}: nothing to recommend from; send recent item ids the model knows"
                                   + (f" (unknown: {', '.join(map(repr, unknown[:10]))})" if unknown else ""))
        top, scores = rank(self.bundle, np.array([user_idx]), last_items([recent], self.bundle.L), [seen], k,
                           exclude_seen)
        found = decode(self.bundle, [user], top, scores)[0]
        return Answer(user, found.items, found.scores, found.titles, unknown)
