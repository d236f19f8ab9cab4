"""How a command's events reach the store: commands saving at the same moment
share one transaction (group commit), and SQLite's single writer is taken in
turn, across processes, instead of fought over.

A command is answered only after the transaction holding its events has
committed; sharing a transaction changes how often the store commits, never
what is durable when a caller hears "done".
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from eventsourcing.persistence import IntegrityError, PersistenceError, StoredEvent

try:
    import fcntl
except ImportError:  # not on Windows: writers of one process still queue
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("kmo_ledger.storage")

CommitObserver = Callable[[int, float], None]
"""Told of each transaction committed: the saves it held and the seconds its
write took (the writer's turn included)."""


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
        if (
            fcntl is not None
            and database_path
            and database_path != ":memory:"
            and not database_path.startswith("file:")
        ):
            self._file = _open_lock_file(database_path + ".writers")

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


def _open_lock_file(path: str) -> int | None:
    """The turn's file, created as readable and writable as the umask lets a
    database file be (SQLite does the same for its -wal and -shm files); a
    user who may only read it still takes turns (``flock`` needs no write
    access); one who cannot open it at all queues in this process only."""
    for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
        try:
            return os.open(path, flags, 0o666)
        except OSError:
            continue
    return None


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

    If a group's transaction is refused for a key conflict, each of its saves
    is written again in a transaction of its own, so one command's conflict
    (another process wrote that wallet version, or claimed that key) refuses
    that command alone. Any other failure fails every save of the group.

    ``observer``, when set, is told of each committed transaction (the API
    counts commits and group sizes with it); what it raises is logged, never
    the save's failure: the events are committed by then."""

    def __init__(self, insert: Callable[[Sequence[StoredEvent]], Any], turn: AbstractContextManager[Any] | None = None):
        self._insert = insert
        self._turn = turn
        self.observer: CommitObserver | None = None
        self._queue: list[_Pending] = []
        self._changed = threading.Condition(threading.Lock())
        self._leading = False
        self.transactions = 0
        """Transactions written so far (the bench and tests compare it with saves)."""

    def write(self, stored: Sequence[StoredEvent]) -> None:
        """Return once ``stored`` is committed; raise what refused it."""
        pending = _Pending(stored)
        leading = False
        group: list[_Pending] = []
        try:
            with self._changed:
                self._queue.append(pending)
                while self._leading and not pending.done:
                    self._changed.wait()
                if not pending.done:
                    leading = True
                    self._leading = True
                    group, self._queue = self._queue, []
            if leading:
                self._write_group(group)
        finally:
            if leading:
                with self._changed:
                    for other in group:
                        if not other.done:  # the leader was interrupted: the outcome is unknown
                            other.error = PersistenceError("the write of this command was interrupted")
                            other.done = True
                    self._leading = False
                    self._changed.notify_all()
        if pending.error is not None:
            raise pending.error

    def _write_group(self, group: list[_Pending]) -> None:
        """Write ``group`` and leave each save done, with the error that refused
        it if any. Only a key conflict (a refusal of the whole transaction,
        nothing written) is worth writing save by save; any other failure may
        have happened after the commit (a connection lost on the way back), so
        each save of the group fails with it and none is written again."""
        if len(group) == 1:
            try:
                self._write(group[0].stored)
            except Exception as error:
                group[0].error = error
            group[0].done = True
            return
        try:
            self._write([event for pending in group for event in pending.stored], saves=len(group))
        except IntegrityError:
            for pending in group:  # one save's conflict must not refuse the others
                try:
                    self._write(pending.stored)
                except Exception as error:
                    pending.error = error
                pending.done = True
        except Exception as error:
            for pending in group:
                pending.error = _own_copy(error)
                pending.done = True
        else:
            for pending in group:
                pending.done = True

    def _write(self, stored: Sequence[StoredEvent], saves: int = 1) -> None:
        started = time.perf_counter()
        if self._turn is None:
            self._insert(stored)
        else:
            with self._turn:
                self._insert(stored)
        self.transactions += 1
        if self.observer is not None:
            try:
                self.observer(saves, time.perf_counter() - started)
            except Exception:
                log.exception("the commit observer failed (the transaction is committed)")


def _own_copy(error: Exception) -> Exception:
    """The same failure as an exception object of the thread's own (one object
    raised in several threads would share, and garble, one traceback)."""
    try:
        copy = type(error)(*error.args)
    except Exception:  # an exception class that cannot be rebuilt from its args
        copy = PersistenceError(str(error))
    copy.__cause__ = error
    return copy
