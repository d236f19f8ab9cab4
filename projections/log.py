"""Reading the ledger's notification log fast, for folding.

The library's ``select_notifications`` builds a UUID and a ``Notification``
per row and filters topics in SQL; a rebuild of a million events spends more
time there than in the fold. This reader selects the same rows from the same
table (named by the ledger's own recorder) as plain tuples, keeps the wallet
events by topic in Python and leaves the state bytes for ``orjson``. Any other
recorder (the in-memory one) is read through ``select_notifications``.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterator
from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from ledger.application import WALLET_EVENT_TOPICS

TYPE_OF = {topic: topic.rpartition(":")[2] for topic in WALLET_EVENT_TOPICS}
"""Stored topic -> event type name, for wallet events only."""


Notification = tuple
"""(notification id, wallet id as 32 hex digits, version, event type name, state bytes):
a plain tuple, the cheapest thing to make a million of."""


class NotificationLog:
    """The wallet events of a ledger's notification log, in order."""

    def __init__(self, recorder: Any):
        self.recorder = recorder
        self._connection: sqlite3.Connection | None = None
        if isinstance(recorder, SQLiteApplicationRecorder) and not recorder.datastore.pool.is_sqlite_memory_mode:
            name = recorder.datastore.pool.db_name
            self._connection = sqlite3.connect(name, uri=name.startswith("file:"), check_same_thread=False)
            self._sql = (
                f"SELECT rowid, originator_id, originator_version, topic, state FROM {recorder.events_table_name} "
                "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
            )
            self.read = self._read_sqlite
            self._by_wallet_sql = (
                f"SELECT rowid, originator_id, originator_version, topic, state FROM {recorder.events_table_name} "
                "WHERE (originator_id, originator_version) > (?, ?) AND rowid <= ? "
                "ORDER BY originator_id, originator_version LIMIT 5000"
            )
            self._rows_by_wallet = self._sqlite_by_wallet
        elif isinstance(recorder, PostgresApplicationRecorder):
            from psycopg import sql
            from psycopg.rows import tuple_row

            self._row_factory = tuple_row
            self._sql = sql.SQL(
                "SELECT notification_id, replace(originator_id::text, '-', ''), originator_version, topic, state "
                "FROM {schema}.{table} WHERE notification_id > %s AND notification_id <= %s "
                "ORDER BY notification_id LIMIT %s"
            ).format(
                schema=sql.Identifier(recorder.datastore.schema), table=sql.Identifier(recorder.events_table_name)
            )
            self.read = self._read_postgres
            self._by_wallet_sql = sql.SQL(
                "SELECT notification_id, replace(originator_id::text, '-', ''), originator_version, topic, state "
                "FROM {schema}.{table} WHERE originator_id > %s::uuid AND notification_id <= %s "
                "ORDER BY originator_id, originator_version"
            ).format(
                schema=sql.Identifier(recorder.datastore.schema), table=sql.Identifier(recorder.events_table_name)
            )
            self._rows_by_wallet = self._postgres_by_wallet
        else:
            self.read = self._read_recorder
            self._rows_by_wallet = self._recorder_by_wallet

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def max_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    def read(self, after: int, stop: int, limit: int) -> tuple[list[Notification], int]:  # replaced per store
        """Wallet events with ``after < id <= stop``, reading at most ``limit`` rows;
        returns them and the last id read (``stop`` when fewer rows were there)."""
        raise NotImplementedError

    @staticmethod
    def _keep(rows: list[tuple], stop: int, limit: int) -> tuple[list[Notification], int]:
        type_of = TYPE_OF
        kept = [(row[0], row[1], row[2], type_of[row[3]], row[4]) for row in rows if row[3] in type_of]
        return kept, (rows[-1][0] if len(rows) == limit else stop)

    def _read_sqlite(self, after: int, stop: int, limit: int) -> tuple[list[Notification], int]:
        rows = self._connection.execute(self._sql, (after, stop, limit)).fetchall()
        return self._keep(rows, stop, limit)

    def _read_postgres(self, after: int, stop: int, limit: int) -> tuple[list[Notification], int]:
        with self.recorder.datastore.get_connection() as connection:
            with connection.cursor(row_factory=self._row_factory) as cursor:
                cursor.execute(self._sql, (after, stop, limit), prepare=True)
                rows = cursor.fetchall()
        return self._keep(rows, stop, limit)

    def _read_recorder(self, after: int, stop: int, limit: int) -> tuple[list[Notification], int]:
        batch = self.recorder.select_notifications(after + 1, limit, stop=stop)
        rows = [(n.id, n.originator_id.hex, n.originator_version, n.topic, n.state) for n in batch]
        return self._keep(rows, stop, limit)

    # ------------------------------------------------------------------ by wallet, for a rebuild

    def by_wallet(self, until: int, after: str, batch_events: int) -> Iterator[tuple[list[Notification], str, int]]:
        """Wallet events with ids up to ``until``, wallet after wallet (wallet ids
        above ``after``), each wallet in version order: batches of whole wallets of
        about ``batch_events`` events, each with its last wallet id and the rows read."""
        type_of = TYPE_OF
        batch: list[Notification] = []
        current, rows_read = None, 0
        for row in self._rows_by_wallet(until, after):
            rows_read += 1
            type_name = type_of.get(row[3])
            if type_name is None:
                continue
            if row[1] != current:
                if len(batch) >= batch_events:
                    yield batch, current, rows_read - 1
                    batch, rows_read = [], 1
                current = row[1]
            batch.append((row[0], row[1], row[2], type_name, row[4]))
        if batch:
            yield batch, current, rows_read

    def _sqlite_by_wallet(self, until: int, after: str) -> Iterator[tuple]:
        # short queries page by key, so no read stays open across the rebuild
        # (an open read would keep the write-ahead log from being checkpointed)
        wallet, version = after, 2**62
        while rows := self._connection.execute(self._by_wallet_sql, (wallet, version, until)).fetchall():
            yield from rows
            wallet, version = rows[-1][1], rows[-1][2]

    def _postgres_by_wallet(self, until: int, after: str) -> Iterator[tuple]:
        start = str(UUID(after)) if after else "00000000-0000-0000-0000-000000000000"
        with self.recorder.datastore.get_connection() as connection, connection.transaction():
            with connection.cursor(name="kmo_rebuild", row_factory=self._row_factory) as cursor:
                cursor.itersize = 2000
                cursor.execute(self._by_wallet_sql, (start, until))
                yield from cursor

    def _recorder_by_wallet(self, until: int, after: str) -> Iterator[tuple]:
        rows: dict[str, list[tuple]] = {}
        start = 1
        while start <= until:
            batch = self.recorder.select_notifications(start, 1000, stop=until)
            if not batch:
                break
            for n in batch:
                if n.originator_id.hex > after:
                    rows.setdefault(n.originator_id.hex, []).append(
                        (n.id, n.originator_id.hex, n.originator_version, n.topic, n.state)
                    )
            start = batch[-1].id + 1
        for wallet_id in sorted(rows):
            yield from sorted(rows[wallet_id], key=lambda row: row[2])
