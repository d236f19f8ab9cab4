"""SQLite storage: the library's recorder, with a command's events written by
ONE statement.

The library's insert is a transaction of several statements (BEGIN, one
INSERT per event, COMMIT). Python's sqlite3 lets go of the interpreter lock
around each of them, and in a busy server every time it takes that lock back
it queues behind the other threads, for up to a switch interval (5 ms),
while SQLite's write lock is still held: every other writer, in this process
or another, waits with it. One multi-row INSERT in auto-commit mode is its
own transaction (all rows or none: a constraint violation backs the whole
statement out), and takes, writes, commits and lets go of SQLite's write
lock within a single call into SQLite, with no Python in between.

The database file is the ledger's own: created owner-only before SQLite first
opens it, and SQLite gives its ``-wal`` and ``-shm`` files the database file's
permissions (see :func:`keep_private`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, OperationalError, PersistenceError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteFactory
from eventsourcing.utils import Environment, EnvType

from ledger.storage import PRIVATE_FILE, private_folder

log = logging.getLogger("kmo_ledger.storage")

ONE_STATEMENT_ROWS = 500
"""Up to this many events go in one statement (4 parameters each: SQLite takes
32,766 since 3.32, 999 before, and fewer rows fit then); a larger save is the
library's transaction of one INSERT per event."""


def tuple_rows(datastore: Any, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
    """A read on one of the library's SQLite connections, as plain tuples (not
    its ``sqlite3.Row``, a tenth slower to make and to read a million of)."""
    with datastore.get_connection(commit=False) as connection:
        cursor = connection._sqlite_conn.cursor()
        cursor.row_factory = None
        try:
            return cursor.execute(statement, tuple(params)).fetchall()
        finally:
            cursor.close()


def rows_per_statement(connection: sqlite3.Connection) -> int:
    """How many events one INSERT of this SQLite may carry (4 parameters each)."""
    return min(ONE_STATEMENT_ROWS, connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 4)


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._statements: dict[int, str] = {}
        with self.datastore.get_connection(commit=False) as connection:
            self._one_statement_rows = rows_per_statement(connection._sqlite_conn)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        count = len(stored_events)
        if kwargs or not 0 < count <= self._one_statement_rows or self.datastore.pool.is_sqlite_memory_mode:
            return super().insert_events(stored_events, **kwargs)
        statement = self._statements.get(count)
        if statement is None:
            rows = ",".join(["(?,?,?,?)"] * count)
            statement = self._statements[count] = f"INSERT INTO {self.events_table_name} VALUES {rows}"
        params: list[Any] = []
        for event in stored_events:
            originator_id = event.originator_id
            params += (
                originator_id.hex if isinstance(originator_id, UUID) else originator_id,
                event.originator_version,
                event.topic,
                event.state,
            )
        with self.datastore.get_connection(commit=True) as connection:
            sqlite = connection._sqlite_conn
            if sqlite.in_transaction:  # left open by an interrupted transaction: not ours to join
                sqlite.rollback()
            try:
                # auto-commit mode (the library's connections are): this
                # statement is the whole transaction
                last = sqlite.execute(statement, params).lastrowid
            except sqlite3.IntegrityError as error:
                raise IntegrityError(error) from error
            except sqlite3.OperationalError as error:
                raise OperationalError(error) from error
            except sqlite3.Error as error:
                raise PersistenceError(error) from error
        if last is None:
            raise PersistenceError("SQLite gave no row id for the inserted events")
        # one statement's rows take consecutive rowids, ending at the last
        return list(range(last - count + 1, last + 1))


def keep_private(database: str) -> None:
    """Make the SQLite file ``database`` its owner's alone before SQLite opens it.

    A missing file (and folder) is created here, 0600 (0700), never through a
    link and without the process-wide umask: SQLite would create it 0644, and
    creates ``-wal`` and ``-shm`` with the database file's permissions. An
    existing file, ``-wal`` or ``-shm`` readable by group or others (as every
    version before this one left it) loses those bits, with a warning: leaving
    it would leave every later ``-wal`` and ``-shm`` as open as the database.
    ``:memory:`` and ``file:`` URIs are left to SQLite."""
    if ":memory:" in database or "mode=memory" in database or database.startswith("file:"):
        return
    path = Path(os.path.realpath(database))  # SQLite follows a link; its -wal and -shm sit by the target
    private_folder(path.parent)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE))
        return
    except FileExistsError:
        pass
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(name.stat().st_mode)
            if mode & 0o077 and name.is_file():
                os.chmod(name, mode & 0o700)
                log.warning("%s was readable by others (%o): now by its owner only (%o)", name, mode, mode & 0o700)
        except FileNotFoundError:
            continue
        except PermissionError:
            log.warning("%s is readable by others and could not be made private", name)


class LedgerSQLiteFactory(SQLiteFactory):
    application_recorder_class = LedgerSQLiteRecorder

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)  # the library's pool connects later, when first asked
        keep_private(self.datastore.pool.db_name)
