"""Reading the ledger's notification log fast, for folding.

The library's ``select_notifications`` builds a UUID and a ``Notification``
per row and filters topics in SQL; a rebuild of a million events spends more
time there than in the fold. This reader selects the same rows from the same
table (named by the ledger's own recorder) as plain tuples
(:class:`ledger.storage.log.LogRows`, which the Merkle tree's verification
reads too; on an SQLite file through a connection of its own), keeps the wallet
events by topic in Python and leaves the state bytes for ``orjson``. Any other
recorder (the in-memory one) is read through ``select_notifications``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.sqlite import SQLiteApplicationRecorder

from ledger.storage.log import LogRows, is_postgres
from ledger.storage.topics import WALLET_EVENT_TOPICS

MAX_WALLET = "f" * 32
"""Above every wallet id but this one (the all-ones UUID is never a wallet's uuid5)."""
TYPE_OF = {topic: topic.rpartition(":")[2] for topic in WALLET_EVENT_TOPICS}
"""Stored topic -> event type name, for wallet events only."""
COLUMNS = ("id", "originator_id", "originator_version", "topic", "state")
"""The columns read (:class:`ledger.storage.log.LogRows`), in the order of a :data:`Notification`'s."""


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
            self._by_wallet_sql = (
                f"SELECT rowid, originator_id, originator_version, topic, state FROM {recorder.events_table_name} "
                "WHERE (originator_id, originator_version) > (?, ?) AND originator_id < ? AND rowid <= ? "
                "ORDER BY originator_id, originator_version LIMIT 5000"
            )
            self._rows_by_wallet = self._sqlite_by_wallet
        elif is_postgres(recorder):
            from psycopg import sql
            from psycopg.rows import tuple_row

            self._row_factory = tuple_row
            self._by_wallet_sql = sql.SQL(
                "SELECT notification_id, replace(originator_id::text, '-', ''), originator_version, topic, state "
                "FROM {schema}.{table} "
                "WHERE originator_id > %s::uuid AND originator_id < %s::uuid AND notification_id <= %s "
                "ORDER BY originator_id, originator_version"
            ).format(schema=sql.Identifier(recorder.datastore.schema), table=sql.Identifier(recorder.events_table_name))
            self._rows_by_wallet = self._postgres_by_wallet
        else:
            self._rows_by_wallet = self._recorder_by_wallet
        self._rows = LogRows(recorder, COLUMNS, self._connection)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def max_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    def read(self, after: int, stop: int, limit: int) -> tuple[list[Notification], int]:
        """Wallet events with ``after < id <= stop``, at most ``limit`` rows read;
        returns them and the last id read (``stop`` when fewer rows were there)."""
        rows = self._rows.read(after, limit, stop)
        type_of = TYPE_OF
        kept = [(row[0], row[1], row[2], type_of[row[3]], row[4]) for row in rows if row[3] in type_of]
        return kept, (rows[-1][0] if len(rows) == limit else stop)

    # ------------------------------------------------------------------ by wallet, for a rebuild

    def by_wallet(
        self, until: int, after: str, batch_events: int, before: str = MAX_WALLET
    ) -> Iterator[tuple[list[Notification], str, int]]:
        """Wallet events with ids up to ``until``, wallet after wallet (wallet ids
        above ``after`` and below ``before``), each wallet in version order: batches
        of whole wallets of about ``batch_events`` events, each with its last wallet
        id and the rows read."""
        type_of = TYPE_OF
        batch: list[Notification] = []
        rows_read = 0
        for rows in self._rows_by_wallet(until, after, before):
            rows_read += len(rows)
            batch += [(row[0], row[1], row[2], type_of[row[3]], row[4]) for row in rows if row[3] in type_of]
            if len(batch) < batch_events:
                continue
            last = batch[-1][1]  # the last wallet may go on in the next rows: keep it for the next batch
            cut = len(batch) - 1
            while cut > 0 and batch[cut - 1][1] == last:
                cut -= 1
            if cut:
                yield batch[:cut], batch[cut - 1][1], rows_read
                batch, rows_read = batch[cut:], 0
        if batch:
            yield batch, batch[-1][1], rows_read

    def _sqlite_by_wallet(self, until: int, after: str, before: str) -> Iterator[list[tuple]]:
        # short queries page by key, so no read stays open across the rebuild
        # (an open read would keep the write-ahead log from being checkpointed)
        wallet, version = after, 2**62
        while rows := self._connection.execute(self._by_wallet_sql, (wallet, version, before, until)).fetchall():
            yield rows
            wallet, version = rows[-1][1], rows[-1][2]

    def _postgres_by_wallet(self, until: int, after: str, before: str) -> Iterator[list[tuple]]:
        """Through a server-side cursor in binary form, fetched in thousands:
        with the compiled driver the fastest way found to stream the rows (a
        COPY sends one message, so one wait, per row)."""
        first = str(UUID(after)) if after else "00000000-0000-0000-0000-000000000000"
        with self.recorder.datastore.get_connection() as connection, connection.transaction():
            connection.execute("SET LOCAL work_mem = '128MB'")  # sort the wallets' rows in memory where it can
            # between fetches the session is idle in this transaction while the
            # caller folds and writes: the library's 5 s limit must not end it
            connection.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            with connection.cursor(name="kmo_ledger_rebuild", binary=True, row_factory=self._row_factory) as cursor:
                cursor.itersize = 5000
                cursor.execute(self._by_wallet_sql, (first, str(UUID(before)), until))
                while rows := cursor.fetchmany(5000):
                    yield rows

    def _recorder_by_wallet(self, until: int, after: str, before: str) -> Iterator[list[tuple]]:
        rows: dict[str, list[tuple]] = {}
        start = 1
        while start <= until:
            batch = self.recorder.select_notifications(start, 1000, stop=until)
            if not batch:
                break
            for n in batch:
                if after < n.originator_id.hex < before:
                    rows.setdefault(n.originator_id.hex, []).append(
                        (n.id, n.originator_id.hex, n.originator_version, n.topic, n.state)
                    )
            start = batch[-1].id + 1
        for wallet_id in sorted(rows):
            yield sorted(rows[wallet_id], key=lambda row: row[2])
