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
Places = list[tuple[int, str]]
"""Where each of a wallet's rows is in the log: (notification id, stored topic)."""


def reads_by_sql(recorder: Any) -> bool:
    """Whether :func:`wallets_rows` reads ``recorder``'s table itself (and can tell each row's place in the log)."""
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    return isinstance(recorder, SQLiteApplicationRecorder) or is_postgres(recorder)


def wallets_rows(ledger: Any, wallet_ids: Sequence[UUID], places: dict[UUID, Places] | None = None) -> dict[UUID, Rows]:
    """Each wallet of ``wallet_ids`` with its stored rows (a wallet with none: an
    empty list); given ``places`` (only where :func:`reads_by_sql`), each
    wallet's :data:`Places` too, row for row, so a fold of the read models can
    take the rows read here instead of reading the log again."""
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    recorder = ledger.recorder
    if isinstance(recorder, SQLiteApplicationRecorder):
        keys: dict[Any, UUID] = {wallet.hex: wallet for wallet in wallet_ids}  # SQLite keeps the id as hex text
        select = (
            f"SELECT originator_id, originator_version, topic, state, rowid FROM {recorder.events_table_name} "
            f"WHERE originator_id IN ({', '.join('?' * len(keys))}) ORDER BY originator_id, originator_version"
        )
        rows = tuple_rows(recorder.datastore, select, list(keys))
    elif is_postgres(recorder):
        from psycopg import sql
        from psycopg.rows import tuple_row

        keys = {wallet: wallet for wallet in wallet_ids}
        statement = sql.SQL(
            "SELECT originator_id, originator_version, topic, state, notification_id FROM {}.{} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(sql.Identifier(recorder.datastore.schema), sql.Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as connection:
            with connection.cursor(row_factory=tuple_row) as postgres:
                rows = postgres.execute(statement, (list(wallet_ids),)).fetchall()
    else:
        return {wallet: ledger.stored_rows(wallet) for wallet in wallet_ids}
    found: dict[UUID, Rows] = {wallet: [] for wallet in wallet_ids}
    by_key = {key: found[wallet] for key, wallet in keys.items()}
    placed_by_key = None
    if places is not None:
        places.update({wallet: [] for wallet in wallet_ids})
        placed_by_key = {key: places[wallet] for key, wallet in keys.items()}
    loads = orjson.loads
    for originator, version, topic, state, position in rows:
        by_key[originator].append((version, event_type(topic), loads(state)))
        if placed_by_key is not None:  # only for a fold that takes these rows
            placed_by_key[originator].append((position, topic))
    return found
