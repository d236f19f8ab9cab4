"""The sandbox (``KMO_LEDGER_SANDBOX=true``): a store marked as a sandbox's or
production's, and the sandbox clock it keeps.

One row beside the events, in a table of its own (``kmo_ledger_mode``), made
when a ledger opens its store (:func:`open_mode`):

- ``mode``: ``sandbox`` or ``production``, written by the first ledger that
  opens the store and checked by every later one. A sandbox's store is refused
  outside sandbox mode, and a production store in it (:class:`StoreModeMismatch`):
  events dated by a moved clock never mix with real ones. A store that holds
  events from before this mark existed is production's.
- ``clock_offset_us``: how far the sandbox clock runs ahead of the machine's,
  in microseconds. :class:`SandboxClock` reads it at every reading, so every
  process serving the store (``serve --workers N``) shows the same moment, and
  a restart keeps it. It only grows (:func:`ledger.domain.clock.moved_offset`).

The row is not an event: moving the clock is no fact about a wallet, and a
sandbox's history is not kept as evidence.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast

from ledger.domain.clock import Clock, ShiftedClock, moved_offset
from ledger.domain.errors import Conflict, ValidationFailed

if TYPE_CHECKING:
    from ledger.application import KmoLedger

Mode = Literal["sandbox", "production"]
TABLE = "kmo_ledger_mode"
MICROSECOND = timedelta(microseconds=1)
MOVE_ATTEMPTS = 20
CREATE = (
    "CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "mode TEXT NOT NULL, clock_offset_us BIGINT NOT NULL, marked_at TEXT NOT NULL)"
)
CREATION_LOCK = 0x6B6D6F2D6D6F6465  # "kmo-mode": PostgreSQL's advisory lock while the table is made


class StoreModeMismatch(ValidationFailed):
    """The store was marked in the other mode: a sandbox's store outside
    sandbox mode, or a production store in it."""


class ModeRow(ABC):
    """The store's one mode row."""

    @abstractmethod
    def create(self) -> None:
        """Make the table if it is missing."""

    @abstractmethod
    def read(self) -> tuple[Mode, int] | None:
        """(mode, clock offset in microseconds); None while unmarked."""

    @abstractmethod
    def mark(self, mode: Mode) -> None:
        """Mark an unmarked store (a store marked meanwhile keeps its mark)."""

    @abstractmethod
    def swap_offset(self, old: int, new: int) -> bool:
        """Set the offset to ``new`` if it still is ``old``; whether it was."""

    def offset(self) -> timedelta:
        found = self.read()
        return MICROSECOND * (found[1] if found else 0)


class SqlModeRow(ModeRow):
    """The row in SQLite or PostgreSQL, through the ledger's own connections.

    Written rarely (a mark, a clock moved), read at every reading of the
    sandbox clock: one primary-key lookup."""

    def __init__(self, table: str, marker: str = "?", writer: AbstractContextManager[Any] | None = None):
        self.table, self.marker = table, marker
        self.writer = writer or nullcontext()

    @abstractmethod
    def _run(self, sql: str, params: Sequence[Any] = (), write: bool = False) -> tuple[list[tuple], int]:
        """Run one statement: (rows, rows changed)."""

    def _sql(self, sql: str) -> str:
        return sql.format(table=self.table).replace("?", self.marker)

    def create(self) -> None:
        self._run(self._sql(CREATE), write=True)

    def read(self) -> tuple[Mode, int] | None:
        rows, _ = self._run(self._sql("SELECT mode, clock_offset_us FROM {table} WHERE id = 1"))
        return (rows[0][0], int(rows[0][1])) if rows else None

    def mark(self, mode: Mode) -> None:
        self._run(
            self._sql(
                "INSERT INTO {table} (id, mode, clock_offset_us, marked_at) VALUES (1, ?, 0, ?) "
                "ON CONFLICT (id) DO NOTHING"
            ),
            (mode, datetime.now(UTC).isoformat()),
            write=True,
        )

    def swap_offset(self, old: int, new: int) -> bool:
        _, changed = self._run(
            self._sql("UPDATE {table} SET clock_offset_us = ? WHERE id = 1 AND clock_offset_us = ?"),
            (new, old),
            write=True,
        )
        return changed == 1


class SqliteModeRow(SqlModeRow):
    def __init__(self, datastore: Any, writer: AbstractContextManager[Any] | None):
        super().__init__(TABLE, "?", writer)
        self.datastore = datastore

    def _run(self, sql: str, params: Sequence[Any] = (), write: bool = False) -> tuple[list[tuple], int]:
        # the library's connections are in auto-commit mode: one statement, one transaction
        with self.writer if write else nullcontext(), self.datastore.get_connection(commit=write) as connection:
            cursor = connection._sqlite_conn.execute(sql, tuple(params))
            try:
                return cursor.fetchall(), cursor.rowcount
            finally:
                cursor.close()


class PostgresModeRow(SqlModeRow):
    def __init__(self, datastore: Any):
        from psycopg.sql import SQL, Identifier

        table = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(TABLE)).as_string(None)
        super().__init__(table, "%s")
        self.datastore = datastore

    def create(self) -> None:
        # processes starting together make it one at a time (CREATE TABLE IF NOT
        # EXISTS alone can still collide on PostgreSQL's catalogue)
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (CREATION_LOCK,))
            cursor.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                (self.datastore.schema, TABLE),
            )
            if cursor.fetchone() is None:
                cursor.execute(self._sql(CREATE))

    def _run(self, sql: str, params: Sequence[Any] = (), write: bool = False) -> tuple[list[tuple], int]:
        # the pool's connections are in auto-commit mode: one statement, one
        # transaction, one round trip
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(sql, tuple(params))
            rows = [tuple(row.values()) for row in cursor.fetchall()] if cursor.description else []
            return rows, cursor.rowcount


class MemoryModeRow(ModeRow):
    """The row of a store in memory, which lives in one process anyway."""

    def __init__(self) -> None:
        self._row: tuple[Mode, int] | None = None
        self._lock = threading.Lock()

    def create(self) -> None:
        pass

    def read(self) -> tuple[Mode, int] | None:
        return self._row

    def mark(self, mode: Mode) -> None:
        with self._lock:
            if self._row is None:
                self._row = (mode, 0)

    def swap_offset(self, old: int, new: int) -> bool:
        with self._lock:
            if self._row is None or self._row[1] != old:
                return False
            self._row = (self._row[0], new)
            return True


class SandboxClock(ShiftedClock):
    """The sandbox clock: the machine's (or ``base``) plus the store's offset,
    read at every reading; :meth:`move_to` moves it forward for every process."""

    def __init__(self, row: ModeRow, base: Clock | None = None):
        super().__init__(row.offset, base)
        self.row = row

    def move_to(self, moment: datetime) -> datetime:
        """Show ``moment`` from now on (refused, nothing changed, if it lies
        before what the clock shows already); returns it."""
        for _ in range(MOVE_ATTEMPTS):
            found = self.row.read()
            old = found[1] if found else 0
            new = moved_offset(self.base.now(), MICROSECOND * old, moment) // MICROSECOND
            if self.row.swap_offset(old, new):
                return moment
        raise Conflict("the sandbox clock kept moving under this request; it was not moved, try again")


def mode_row(ledger: KmoLedger) -> ModeRow:
    """The mode row of the ledger's store, through the ledger's own connections."""
    datastore = getattr(ledger.recorder, "datastore", None)
    if datastore is None:
        return MemoryModeRow()
    from eventsourcing.sqlite import SQLiteDatastore

    if isinstance(datastore, SQLiteDatastore):
        return SqliteModeRow(datastore, ledger.writer_turn)
    return PostgresModeRow(datastore)


def open_mode(ledger: KmoLedger, sandbox: bool, where: str) -> SandboxClock | None:
    """Mark the ledger's store in this mode if it is unmarked, refuse it if it is
    marked in the other (:class:`StoreModeMismatch`, naming the store ``where``);
    in sandbox mode, the sandbox clock on the ledger's clock."""
    row = mode_row(ledger)
    row.create()
    found = row.read()
    if found is None:
        holds_events = bool(ledger.recorder.max_notification_id())
        row.mark("production" if holds_events or not sandbox else "sandbox")
        found = row.read()
    mode = cast(tuple[Mode, int], found)[0]
    if mode == "sandbox" and not sandbox:
        raise StoreModeMismatch(
            f"the ledger at {where} is a sandbox (its clock can be moved): open it with "
            "KMO_LEDGER_SANDBOX=true, or name the production ledger in KMO_LEDGER_DATABASE_URL"
        )
    if mode == "production" and sandbox:
        raise StoreModeMismatch(
            f"the ledger at {where} is not a sandbox: KMO_LEDGER_SANDBOX=true needs a database of its own "
            "(a new KMO_LEDGER_DATABASE_URL)"
        )
    return SandboxClock(row, ledger.clock) if sandbox else None
