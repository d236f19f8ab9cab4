"""PostgreSQL storage: the library's recorder, with a command's events written
in ONE round trip.

The library's default insert talks to the server several times per
transaction (BEGIN, SET LOCAL lock_timeout, LOCK TABLE, NOTIFY, INSERT, sync,
COMMIT, in a pipeline that still waits twice). Its optional stored function
does it in one prepared call, but leaves out the table lock that keeps
notification ids in commit order, so a projection tailing the log could pass
over an id that commits later. The function here takes that same lock, so the
log stays gap-free in commit order, and the call is still one round trip:
an auto-commit statement is its own transaction.

No NOTIFY: nothing here listens; the projections read the log. The function
has a name of its own (``kmo_ledger_insert_events_uuid``), apart from the
library's lock-free ``es_insert_events_uuid`` that the library recreates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import psycopg
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg.sql import SQL, Identifier

from ledger.domain.errors import StoreBusy

log = logging.getLogger("kmo_ledger.storage")
INSERT_ATTEMPTS = 3
"""Tries of an insert that lost its connection; a lock timeout is not tried again."""
_insert_once = PostgresApplicationRecorder.insert_events.__wrapped__  # the library's insert without its 10 tries


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        schema, table = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        # a name of its own: the library (re)creates its lock-free function under
        # its name at every start, so an older process on the same schema must
        # not be able to swap this one out
        self.pg_function_name_insert_events = f"kmo_ledger_insert_events_{self.datastore.originator_id_type}"
        self.sql_invoke_pg_function_insert_events = SQL("SELECT * FROM {schema}.{function}((%s))").format(
            schema=schema, function=Identifier(self.pg_function_name_insert_events)
        )
        self.sql_create_pg_function_insert_events = SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{event}[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
            "BEGIN "
            "SET LOCAL lock_timeout = '{lock_timeout}s'; "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "RETURN QUERY "
            "INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state) "
            "SELECT originator_id, originator_version, topic, state FROM unnest(events) "
            "RETURNING notification_id; "
            "END; $BODY$"
        ).format(
            schema=schema,
            function=Identifier(self.pg_function_name_insert_events),
            event=Identifier(self.stored_event_type_name),
            lock_timeout=self.datastore.lock_timeout,
            table=table,
        )
        self.sql_create_statements[self.create_insert_function_statement_index] = (
            self.sql_create_pg_function_insert_events
        )

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The library's insert, with a bounded wait: the table lock is waited for
        once (``lock_timeout``), then the command is refused ``store_busy``; a lost
        connection is tried again a few times, not ten."""
        for attempt in range(1, INSERT_ATTEMPTS + 1):
            try:
                return cast(Sequence[int] | None, _insert_once(self, stored_events, **kwargs))
            except OperationalError as error:
                if isinstance(error.__cause__, psycopg.errors.LockNotAvailable):
                    log.warning("the event table stayed locked for %s s: command refused", self.datastore.lock_timeout)
                    raise StoreBusy(
                        f"another writer held the ledger's event table for {self.datastore.lock_timeout} s; "
                        "nothing was recorded, try again"
                    ) from None
                if attempt == INSERT_ATTEMPTS:
                    raise
            except InterfaceError:
                if attempt == INSERT_ATTEMPTS:
                    raise
        return None


CREATION_LOCK = 0x6B6D6F2D6C656467  # "kmo-ledg": the advisory lock of table creation


class LedgerPostgresFactory(PostgresFactory):
    """The library's factory, creating the tables one process at a time.

    Processes starting together (``serve --workers``, rebuild workers) would
    otherwise race on ``CREATE TYPE``, which has no ``IF NOT EXISTS``: the
    loser fails on PostgreSQL's catalogue (a unique violation the library does
    not expect) and that worker does not start."""

    application_recorder_class = LedgerPostgresRecorder

    @contextmanager
    def _creating(self) -> Iterator[None]:
        """Held on a connection of its own, closed after: the lock goes with the
        session whatever happens, and the pool keeps all its connections for
        the creation itself."""
        if not self.env_create_table():
            yield
            return
        pool = self.datastore.pool
        kwargs = cast(dict[str, Any], pool.kwargs)
        settings = {name: value for name, value in kwargs.items() if name != "row_factory"}
        # the library's POSTGRES_CONNECT_TIMEOUT, as for the pool's connections
        with psycopg.connect(**settings, autocommit=True, connect_timeout=max(1, round(pool.timeout))) as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (CREATION_LOCK,))
            yield

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        with self._creating():
            return super().aggregate_recorder(purpose)

    def application_recorder(self) -> ApplicationRecorder:
        with self._creating():
            return super().application_recorder()
