"""A SQLite event store in WAL mode: an event is acknowledged only after its transaction commits
into the file that is at the store's path.

Ids keep their JSON type (the columns have no type affinity, so 12 stays an integer and "12" text).
Several processes may share one store on one machine: each applies the events it has not applied
yet, by id (`catch_up`). The store is stamped with the sha256 of its bundle's bundle.json, so it
never replays one model's events into another.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqrec.atomic import sha256
from seqrec.bundle import META, bundle_dir
from seqrec.errors import SeqrecError

SCHEMA = ("""CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user NOT NULL,
    item NOT NULL,
    timestamp INTEGER NOT NULL
)""", "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value NOT NULL)")
STAMP = "bundle_sha256"


class StoreUnavailableError(SeqrecError):
    """The store cannot take events now (its file was deleted, replaced or made read-only, or SQLite failed)."""


@dataclass(frozen=True)
class StoredEvent:
    id: int
    user: Any
    item: Any
    timestamp: int


def bundle_sha256(bundle_path: Path) -> str:
    """sha256 of the bundle's bundle.json: it names the model (and the files' own hashes) exactly."""
    return sha256(bundle_dir(bundle_path) / META)


class EventStore:
    """One connection shared by the server's threads behind a lock (SQLite serialises writers anyway).

    Opening checks that the file takes writes and belongs to the bundle at `bundle_path` (an
    unstamped store is stamped); SeqrecError otherwise.
    """

    def __init__(self, path: Path, bundle_path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()                       # the connection
        self._catch_up_lock = threading.Lock()              # read-and-apply, so each event is applied once
        self._applied = 0                                   # highest event id passed to catch_up's `apply`
        with ExitStack() as undo:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
                undo.callback(self._conn.close)
                self._identity = _identity(self.path.stat())
                _refuse(self.problem())                     # before SQLite writes a byte into a read-only file
                mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                self._conn.execute("PRAGMA synchronous=FULL")  # a committed event survives power loss too
            except (OSError, sqlite3.DatabaseError) as err:
                raise SeqrecError(f"{self.path}: cannot open the event store ({err})") from None
            if mode != "wal":
                raise SeqrecError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); use a local file system")
            with self._write() as conn:                     # also proves at start that the file takes writes
                for statement in SCHEMA:
                    conn.execute(statement)
                self._stamp(conn, bundle_path)
            undo.pop_all()                                  # opened: keep the connection

    def _stamp(self, conn: sqlite3.Connection, bundle_path: Path) -> None:
        mine = bundle_sha256(bundle_path)
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (STAMP,)).fetchone()
        if row is None:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (STAMP, mine))
        elif row[0] != mine:
            raise SeqrecError(f"{self.path} holds the events of another bundle (bundle.json sha256 {row[0][:12]}), "
                              f"not of {bundle_dir(bundle_path)} (sha256 {mine[:12]}); give this bundle its own "
                              "store: --events NEW.sqlite")

    def problem(self) -> str | None:
        """Why events cannot be stored now, or None: the file at the path must be the one opened, and writable."""
        return self._check(writable=True)

    def _check(self, writable: bool) -> str | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return f"{self.path} was deleted or moved away; events cannot be stored (restart the service)"
        if _identity(stat) != self._identity:
            return f"{self.path} was replaced by another file; events cannot be stored (restart the service)"
        if writable and (not stat.st_mode & 0o222 or not os.access(self.path, os.W_OK)):   # root ignores the bits
            return f"{self.path} is read-only; events cannot be stored (make it writable)"
        return None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, checked before (the file takes writes) and after (the committed file is still
        the one at the path: SQLite happily commits into a deleted file)."""
        with self._lock:
            _refuse(self.problem())
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                finally:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
            except sqlite3.Error as err:
                raise StoreUnavailableError(f"{self.path}: cannot store events ({err})") from None
            _refuse(self._check(writable=False))

    def append(self, events: Sequence[tuple[Any, Any, int]]) -> list[int]:
        """Store (user, item, timestamp) events in one transaction; returns their ids once committed."""
        with self._write() as conn:
            return [conn.execute("INSERT INTO events (user, item, timestamp) VALUES (?, ?, ?)", e).lastrowid
                    for e in events]

    def catch_up(self, apply: Callable[[list[StoredEvent]], None], chunk: int = 10_000) -> None:
        """Pass every event stored since the last call, by this process or another, to `apply`: each once, by id.

        Ids grow in commit order (writers are serialised), so the highest id applied marks all before it.
        Once the file at the path is no longer the one opened, nothing more is applied: what the
        connection reads then (say, an event committed into a deleted file) is not in the store.
        """
        with self._catch_up_lock:
            while True:
                with self._lock:
                    try:
                        rows = self._conn.execute("SELECT id, user, item, timestamp FROM events WHERE id > ? "
                                                  "ORDER BY id LIMIT ?", (self._applied, chunk)).fetchall()
                    except sqlite3.Error as err:
                        raise StoreUnavailableError(f"{self.path}: cannot read events ({err})") from None
                if self._check(writable=False):            # after the read: a file gone before it counts
                    return
                if rows:
                    apply([StoredEvent(*row) for row in rows])
                    self._applied = rows[-1][0]
                if len(rows) < chunk:
                    return

    def count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


def _refuse(problem: str | None) -> None:
    if problem:
        raise StoreUnavailableError(problem)
