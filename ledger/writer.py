"""How a command's events reach the store: commands saving at the same moment
share one transaction (group commit), and SQLite's single writer is taken in
turn, across processes, instead of fought over.

A command is answered only after the transaction holding its events has
committed; sharing a transaction changes how often the store commits, never
what is durable when a caller hears "done".
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, ContextManager, Sequence

from eventsourcing.persistence import StoredEvent

try:
    import fcntl
except ImportError:  # not on Windows: writers of one process still queue
    fcntl = None  # type: ignore[assignment]


class WriterTurn:
    """SQLite's one writer at a time, taken in turn instead of fought over.

    Writers that meet inside SQLite wait in its busy handler, which sleeps
    (1, 2, 5, 10 ... ms) and tries again; under concurrent commands that
    sleeping, not the writing, sets the pace. Here the threads of a process
    queue on a lock and the processes on one file beside the database
    (``<database>.writers``, an ``flock``): the kernel wakes the next writer
    the moment the last one is done. Every writer of the file here (commands,
    snapshots, views kept in the same file) takes this turn; a process that
    does not (another tool) still meets them in SQLite's busy handler, as
    before, so the turn only ever makes waiting shorter."""

    def __init__(self, database_path: str | None):
        self._threads = threading.Lock()
        self._file: int | None = None
        if fcntl is not None and database_path and database_path != ":memory:" \
                and not database_path.startswith("file:"):
            self._file = os.open(database_path + ".writers", os.O_RDWR | os.O_CREAT, 0o644)

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise

    def __exit__(self, *_exc: Any) -> None:
        try:
            if self._file is not None:
                fcntl.flock(self._file, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        with self._threads:
            if self._file is not None:
                os.close(self._file)
                self._file = None


class _Pending:
    """One save waiting for its transaction."""

    __slots__ = ("stored", "done", "error")

    def __init__(self, stored: Sequence[StoredEvent]):
        self.stored = stored
        self.done = False
        self.error: BaseException | None = None


class GroupCommit:
    """Saves that arrive together are written in ONE transaction.

    The first save to find no write under way leads: it takes every save
    queued so far (its own included), writes them in one transaction and
    wakes their threads. Saves arriving meanwhile queue for the next leader.
    Alone (one command at a time) a save writes itself at once, with no
    hand-off to another thread. Under concurrent commands the store commits
    once per group, and a group's writer holds SQLite's turn (or PostgreSQL's
    table lock) once for all of them.

    If a group's transaction fails, each of its saves is written again in a
    transaction of its own, so one command's conflict (another process wrote
    that wallet version, or claimed that key) refuses that command alone."""

    def __init__(self, insert: Callable[[Sequence[StoredEvent]], Any], turn: ContextManager[Any] | None = None):
        self._insert = insert
        self._turn = turn
        self._queue: list[_Pending] = []
        self._changed = threading.Condition(threading.Lock())
        self._leading = False
        self.transactions = 0
        """Transactions written so far (the bench and tests compare it with saves)."""

    def write(self, stored: Sequence[StoredEvent]) -> None:
        """Return once ``stored`` is committed; raise what refused it."""
        pending = _Pending(stored)
        with self._changed:
            self._queue.append(pending)
            while self._leading and not pending.done:
                self._changed.wait()
            if not pending.done:
                self._leading = True
                group, self._queue = self._queue, []
        if not pending.done:
            try:
                self._write_group(group)
            finally:
                with self._changed:
                    self._leading = False
                    self._changed.notify_all()
        if pending.error is not None:
            raise pending.error

    def _write_group(self, group: list[_Pending]) -> None:
        """Write ``group``, leaving each save done, with the error that refused it if any."""
        try:
            if len(group) > 1:
                try:
                    self._write([event for pending in group for event in pending.stored])
                    return
                except Exception:
                    pass  # one save's conflict must not refuse the others: each alone
            for pending in group:
                try:
                    self._write(pending.stored)
                except Exception as error:
                    pending.error = error
                pending.done = True
        except BaseException as error:  # interrupted: whatever was not written fails with it
            for pending in group:
                if not pending.done:
                    pending.error = error
        finally:
            for pending in group:
                pending.done = True

    def _write(self, stored: Sequence[StoredEvent]) -> None:
        if self._turn is None:
            self._insert(stored)
        else:
            with self._turn:
                self._insert(stored)
        self.transactions += 1
