"""Ctrl-C and SIGTERM during a search, taken only where they can do no harm.

Python raises KeyboardInterrupt wherever the main thread happens to be when a signal arrives. Inside one of
Optuna's storage calls that can leave a write transaction open on the process's own connection: with SQLite,
every later write of the process (marking the cut trial failed, the next sitting's bookkeeping) then waits for a
lock the process itself holds, and fails once the lock timeout has passed. So while a search runs, both
signals raise at once only while a trial trains (seqrec's own code, which holds no storage session); anywhere
else they ask the study to stop after the step in progress, and a trial that starts training afterwards is cut
at its start.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import optuna


class SearchInterrupts:
    """The signals that stop one `study.optimize`; `received` names the first one (e.g. 'SIGTERM'), or None."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self.received: str | None = None
        self._training = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Take SIGINT and SIGTERM while the block runs. Only the main thread can take signals; elsewhere nothing
        changes."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {number: signal.signal(number, self._take) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _take(self, number: int, frame: object) -> None:
        self.received = self.received or signal.Signals(number).name
        if self._training:
            raise KeyboardInterrupt(self.received)
        with contextlib.suppress(RuntimeError):        # RuntimeError: not inside study.optimize
            self.study.stop()

    def _raise_if_received(self) -> None:
        if self.received is not None:
            raise KeyboardInterrupt(self.received)

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        """A trial's training: a signal cuts it at once (KeyboardInterrupt), also one that came just before."""
        self._raise_if_received()
        self._training = True
        try:
            yield
        finally:
            self._training = False

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Inside `training`, a block that talks to the storage (a report to the pruner): a signal waits for its
        end."""
        self._training = False
        try:
            yield
        finally:
            self._training = True
        self._raise_if_received()
