"""A SQLite event store in WAL mode: an event is acknowledged only after its transaction commits.

Ids keep their JSON type (the columns have no type affinity, so 12 stays an integer and "12" text).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqrec.errors import SeqrecError

SCHEMA = """CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user NOT NULL,
    item NOT NULL,
    timestamp INTEGER NOT NULL
)"""


@dataclass(frozen=True)
class StoredEvent:
    id: int
    user: Any
    item: Any
    timestamp: int


class EventStore:
    """One connection shared by the server's threads behind a lock (SQLite serialises writers anyway)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous=FULL")      # a committed event survives power loss too
            self._conn.execute(SCHEMA)
        except sqlite3.DatabaseError as err:
            raise SeqrecError(f"{self.path}: cannot open the event store ({err})") from None
        if mode != "wal":
            raise SeqrecError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); use a local file system")
        self._lock = threading.Lock()

    def append(self, events: Sequence[tuple[Any, Any, int]]) -> list[StoredEvent]:
        """Store (user, item, timestamp) events in one transaction; returns them with their ids once committed."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                ids = [self._conn.execute("INSERT INTO events (user, item, timestamp) VALUES (?, ?, ?)", e).lastrowid
                       for e in events]
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return [StoredEvent(i, *e) for i, e in zip(ids, events, strict=True)]

    def replay(self, chunk: int = 10_000) -> Iterator[list[StoredEvent]]:
        """Every stored event ordered by timestamp, then arrival, in chunks."""
        with self._lock:
            rows = self._conn.execute("SELECT id, user, item, timestamp FROM events ORDER BY timestamp, id").fetchall()
        for start in range(0, len(rows), chunk):
            yield [StoredEvent(*row) for row in rows[start:start + chunk]]

    def count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
