"""Many wallets' stored rows in one query, for verification.

``KmoLedger.stored_rows`` reads one wallet through the library (a query, a
UUID and a ``StoredEvent`` per row): at a million events that reading cost more
than checking what was read. :func:`wallets_rows` reads a chunk of wallets by
SQL from the recorder's own table on SQLite and PostgreSQL, in the same form;
any other recorder (the in-memory one) wallet by wallet through the library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson

from ledger.storage.log import event_type, is_postgres
from ledger.storage.sqlite import tuple_rows

Rows = list[tuple[int, str, Any]]
"""A wallet's rows in version order: (version, event type, decoded state)."""


def wallets_rows(ledger: Any, wallet_ids: Sequence[UUID]) -> dict[UUID, Rows]:
    """Each wallet of ``wallet_ids`` with its stored rows (a wallet with none: an empty list)."""
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    recorder = ledger.recorder
    found: dict[UUID, Rows] = {wallet: [] for wallet in wallet_ids}
    if isinstance(recorder, SQLiteApplicationRecorder):
        by_hex = {wallet.hex: found[wallet] for wallet in wallet_ids}
        select = (
            f"SELECT originator_id, originator_version, topic, state FROM {recorder.events_table_name} "
            f"WHERE originator_id IN ({', '.join('?' * len(by_hex))}) ORDER BY originator_id, originator_version"
        )
        for originator, version, topic, state in tuple_rows(recorder.datastore, select, list(by_hex)):
            by_hex[originator].append((version, event_type(topic), orjson.loads(state)))
    elif is_postgres(recorder):
        from psycopg import sql
        from psycopg.rows import tuple_row

        statement = sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM {}.{} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(sql.Identifier(recorder.datastore.schema), sql.Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as connection:
            with connection.cursor(row_factory=tuple_row) as postgres:
                rows = postgres.execute(statement, (list(wallet_ids),)).fetchall()
        for originator, version, topic, state in rows:
            found[originator].append((version, event_type(topic), orjson.loads(state)))
    else:
        for wallet in wallet_ids:
            found[wallet] = ledger.stored_rows(wallet)
    return found
