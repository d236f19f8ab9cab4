"""The notification log read as a stream: every stored row in the order it was
recorded, a batch at a time, so a million events are read in the memory of one.

:func:`notifications` gives the library's ``Notification`` objects;
:class:`LogRows` the same rows as plain tuples of the columns asked for, for a
reader of every row (the Merkle tree's verification and catch-up, the read
models' fold) that would otherwise spend more time making a UUID and a
``Notification`` per row than using them; :func:`no_cycle_collection` for
such a pass.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from operator import attrgetter
from typing import Any

BATCH = 500


def notifications(ledger: Any, topics: Sequence[str], stop: int | None = None) -> Iterator[Any]:
    """Stream the notification log (only ``topics``) in batches, up to ``stop``:
    never more than one batch in memory."""
    start = 1
    while True:
        batch = ledger.recorder.select_notifications(start, BATCH, stop=stop, topics=topics)
        if not batch:
            return
        yield from batch
        start = batch[-1].id + 1
        if stop is not None and start > stop:
            return


def event_type(topic: str) -> str:
    """``ledger.events:OwnShareDeposited`` -> ``OwnShareDeposited``."""
    return topic.rsplit(":", 1)[-1]


_SQLITE_COLUMNS = {
    "id": "rowid",
    "originator_id": "originator_id",
    "originator_version": "originator_version",
    "topic": "topic",
    "state": "state",
}
_POSTGRES_COLUMNS = _SQLITE_COLUMNS | {
    "id": "notification_id",
    "originator_id": "replace(originator_id::text, '-', '')",
}
_NOTIFICATION_COLUMNS: dict[str, Callable[[Any], Any]] = {
    "id": attrgetter("id"),
    "originator_id": lambda notification: notification.originator_id.hex,
    "originator_version": attrgetter("originator_version"),
    "topic": attrgetter("topic"),
    "state": attrgetter("state"),
}


def is_postgres(recorder: Any) -> bool:
    """Whether ``recorder`` (of events or snapshots) is PostgreSQL's: the store with a datastore other than
    SQLite's (asked without importing psycopg, ten megabytes a process, on SQLite)."""
    from eventsourcing.sqlite import SQLiteRecorder

    return not isinstance(recorder, SQLiteRecorder) and getattr(recorder, "datastore", None) is not None


class LogRows:
    """The rows of a ledger's notification log as plain tuples of ``columns``,
    in notification order: ``id`` (the notification id), ``originator_id`` (32
    lowercase hex digits), ``originator_version``, ``topic``, ``state`` (the
    stored bytes). Read by SQL from the recorder's own table on SQLite
    (through ``connection`` when given, else the library's) and PostgreSQL;
    any other recorder (the in-memory one) through ``select_notifications``."""

    def __init__(self, recorder: Any, columns: Sequence[str], connection: sqlite3.Connection | None = None):
        from eventsourcing.sqlite import SQLiteApplicationRecorder

        self.recorder, self.connection = recorder, connection
        self._read: Callable[[int, int, int | None], list[tuple]]
        self._sql: Any  # SQL text on SQLite, a composed statement on PostgreSQL
        self._sql_to_stop: Any
        if isinstance(recorder, SQLiteApplicationRecorder):
            select = f"SELECT {', '.join(_SQLITE_COLUMNS[c] for c in columns)} FROM {recorder.events_table_name} "
            self._sql = select + "WHERE rowid > ? ORDER BY rowid LIMIT ?"
            self._sql_to_stop = select + "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
            self._read = self._read_sqlite
        elif is_postgres(recorder):  # psycopg is imported only here
            from psycopg import sql
            from psycopg.rows import tuple_row

            self._row_factory = tuple_row
            selected = sql.SQL(f"SELECT {', '.join(_POSTGRES_COLUMNS[c] for c in columns)} FROM {{}}.{{}} ").format(
                sql.Identifier(recorder.datastore.schema), sql.Identifier(recorder.events_table_name)
            )
            self._sql = selected + sql.SQL("WHERE notification_id > %s ORDER BY notification_id LIMIT %s")
            self._sql_to_stop = selected + sql.SQL(
                "WHERE notification_id > %s AND notification_id <= %s ORDER BY notification_id LIMIT %s"
            )
            self._read = self._read_postgres
        else:
            self._getters = [_NOTIFICATION_COLUMNS[c] for c in columns]
            self._read = self._read_recorder

    def read(self, after: int, limit: int, stop: int | None = None) -> list[tuple]:
        """At most ``limit`` rows with a notification id above ``after`` (and up to ``stop``)."""
        return self._read(after, limit, stop)

    def _params(self, after: int, limit: int, stop: int | None) -> tuple[Any, tuple[int, ...]]:
        if stop is None:
            return self._sql, (after, limit)
        return self._sql_to_stop, (after, stop, limit)

    def _read_sqlite(self, after: int, limit: int, stop: int | None = None) -> list[tuple]:
        statement, params = self._params(after, limit, stop)
        if self.connection is not None:
            return self.connection.execute(statement, params).fetchall()
        from ledger.storage.sqlite import tuple_rows

        return tuple_rows(self.recorder.datastore, statement, params)

    def _read_postgres(self, after: int, limit: int, stop: int | None = None) -> list[tuple]:
        statement, params = self._params(after, limit, stop)
        with self.recorder.datastore.get_connection() as connection:
            with connection.cursor(row_factory=self._row_factory) as cursor:
                cursor.execute(statement, params, prepare=True)
                return cursor.fetchall()

    def _read_recorder(self, after: int, limit: int, stop: int | None = None) -> list[tuple]:
        getters = self._getters
        batch = self.recorder.select_notifications(after + 1, limit, stop=stop)
        return [tuple(get(notification) for get in getters) for notification in batch]


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """For a pass over many rows that makes short-lived objects (a decoded
    state per row) and no reference cycles: collecting cycles meanwhile only
    costs time."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
