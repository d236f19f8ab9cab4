"""PostgreSQL storage: the library's recorder, with a command's events written
in ONE round trip, and a bounded wait for a connection.

The library's default insert talks to the server several times per
transaction (BEGIN, SET LOCAL lock_timeout, LOCK TABLE, NOTIFY, INSERT, sync,
COMMIT, in a pipeline that still waits twice). Its optional stored function
does it in one prepared call, but leaves out the table lock that keeps
notification ids in commit order, so a projection tailing the log could pass
over an id that commits later. The function here takes that same lock, so the
log stays gap-free in commit order, and the call is still one round trip:
an auto-commit statement is its own transaction. It has a name of its own
(``kmo_ledger_insert_events_uuid``), apart from the library's lock-free
``es_insert_events_uuid`` that the library recreates.

The function sends a NOTIFY, as the library's own insert does, so the
library's ``subscribe()`` hears of new events (without it a subscription
waits forever); the projections read the log and do not listen. The channel
is named after the schema and the table (``<schema>.kmo_ledger_events``), not
the table alone as in the library, so ledgers on other schemas of the
database do not wake each other. A NOTIFY nobody listens to costs the insert
nothing measurable (the commits are serialised by the table lock already).

A process recorder (events with a tracking record) writes the tracking record
and calls the function in one transaction: the library's, with the database
functions on, calls its function with the events alone and drops the
tracking record without a word.

A connection is waited for once, for ``POSTGRES_CONNECT_TIMEOUT`` seconds:
when the server refuses new connections ("too many clients") or does not
answer, a command or read is refused ``store_unavailable`` (a 503) with one
log line naming the server and its reason, instead of the library's ten tries
of a 30-second wait; nothing was recorded. A ledger that cannot reach its
store at the start says so in one line, and a missing schema is created.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import psycopg
import psycopg_pool
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InterfaceError,
    OperationalError,
    ProcessRecorder,
    StoredEvent,
    Tracking,
)
from eventsourcing.postgres import (
    ConnectionPool,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
    PostgresProcessRecorder,
    TPostgresTrackingRecorder,
)
from eventsourcing.utils import Environment, EnvType
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from ledger.domain.errors import StoreBusy, StoreUnavailable

log = logging.getLogger("kmo_ledger.storage")
INSERT_ATTEMPTS = 3
"""Tries of an insert that lost its connection; a lock timeout is not tried again."""
_insert_once = PostgresApplicationRecorder.insert_events.__wrapped__  # the library's insert without its 10 tries


def _reason(error: BaseException) -> str:
    """Why a connection failed, in one line: the server's or the network's words
    ('too many connections for role "kmo"', 'Connection refused')."""
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()


class LedgerConnectionPool(ConnectionPool[Connection[DictRow]]):
    """The library's pool, remembering why its last try to connect failed (its
    tries run in the background; a caller only sees its wait run out)."""

    refusal: str | None = None

    def _connect(self, timeout: float | None = None) -> Connection[DictRow]:
        try:
            connection = super()._connect(timeout)
        except Exception as error:
            self.refusal = _reason(error)
            raise
        self.refusal = None
        return connection


class LedgerPostgresDatastore(PostgresDatastore):
    """The library's datastore, whose connections are waited for once."""

    pool: LedgerConnectionPool

    @property
    def server(self) -> str:
        kwargs = cast(dict[str, Any], self.pool.kwargs)
        return f"{kwargs['host']}:{kwargs['port']}"

    @contextmanager
    def get_connection(self) -> Iterator[Connection[DictRow]]:
        """A connection of the pool; none within the pool's timeout (the
        connect timeout) is :class:`StoreUnavailable`, which the library's
        retries let through. A connection found dead (the server restarted or
        dropped it) has the pool check its others, so a retry is given a live
        one or waits for a new one, instead of meeting the next dead one."""
        given: Connection[DictRow] | None = None
        try:
            with super().get_connection() as connection:
                given = connection
                yield connection
        except (OperationalError, InterfaceError) as error:
            if given is None and isinstance(error.__cause__, psycopg_pool.PoolTimeout):
                raise self.unavailable() from None
            if given is not None and given.closed:
                self.pool.check()
            raise

    def unavailable(self) -> StoreUnavailable:
        why = (
            self.pool.refusal
            or f"none of the pool's {self.pool.max_size} connections came free and no new one was made"
        )
        log.warning("PostgreSQL at %s gave no connection within %s s: %s", self.server, self.pool.timeout, why)
        return StoreUnavailable(
            f"PostgreSQL at {self.server} gave no connection within {self.pool.timeout:g} s ({why}); "
            "nothing was recorded, try again"
        )


def bound_the_wait(datastore: PostgresDatastore) -> LedgerPostgresDatastore:
    """The library's datastore and pool (the library's factory builds them by
    name) made the ledger's, before the pool is opened: a connection is waited
    for ``POSTGRES_CONNECT_TIMEOUT`` seconds (the pool's timeout), each try to
    connect takes at most as long (psycopg would wait 130 s for a server that
    does not answer), and a lost connection is tried again in the background
    for as long, after which the next caller's wait starts a fresh try (the
    pool's back-off would otherwise leave a store that came back unused for
    as long as it was away)."""
    datastore.__class__ = LedgerPostgresDatastore
    pool = datastore.pool
    pool.__class__ = LedgerConnectionPool
    timeout = max(1, round(pool.timeout))
    cast(dict[str, Any], pool.kwargs)["connect_timeout"] = timeout
    pool.reconnect_timeout = timeout
    return cast(LedgerPostgresDatastore, datastore)


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        schema, table = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        # the library names the channel after the table alone, and channels are
        # the database's: the ledgers of every schema would wake each other's
        # subscriptions
        self.channel_name = f"{self.datastore.schema}.{self.events_table_name}"
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
            "NOTIFY {channel}; "
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
            channel=Identifier(self.channel_name),
            table=table,
        )
        self.sql_create_statements[self.create_insert_function_statement_index] = (
            self.sql_create_pg_function_insert_events
        )

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The library's insert, with a bounded wait: the table lock is waited for
        once (``lock_timeout``), then the command is refused ``store_busy``; a lost
        connection is tried again a few times, not ten; no connection at all is
        ``store_unavailable`` (the datastore's)."""
        for attempt in range(1, INSERT_ATTEMPTS + 1):
            try:
                return self._insert(stored_events, **kwargs)
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

    def _insert(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """One try of the insert."""
        return cast(Sequence[int] | None, _insert_once(self, stored_events, **kwargs))


class LedgerPostgresProcessRecorder(PostgresProcessRecorder, LedgerPostgresRecorder):
    """The library's process recorder on the ledger's insert function: events
    with a tracking record go in ONE transaction with it (the library's,
    with the database functions on, drops the tracking record)."""

    def _insert(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        tracking: Tracking | None = kwargs.get("tracking")
        if tracking is None or not self.datastore.enable_db_functions:
            return super()._insert(stored_events, **kwargs)
        events = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        with self.datastore.transaction(commit=True) as cursor:
            self._insert_tracking(cursor, tracking)  # refused (IntegrityError) unless it moves forward
            if not events:
                return []
            cursor.execute(self.sql_invoke_pg_function_insert_events, (events,), prepare=True)
            return [row[self.pg_function_name_insert_events] for row in cursor.fetchall()]


CREATION_LOCK = 0x6B6D6F2D6C656467  # "kmo-ledg": the advisory lock of table creation


class LedgerPostgresFactory(PostgresFactory):
    """The library's factory, with the ledger's recorders and bounded wait,
    creating the schema and tables one process at a time.

    Processes starting together (``serve --workers``, rebuild workers) would
    otherwise race on ``CREATE TYPE``, which has no ``IF NOT EXISTS``: the
    loser fails on PostgreSQL's catalogue (a unique violation the library does
    not expect) and that worker does not start."""

    application_recorder_class = LedgerPostgresRecorder
    process_recorder_class = LedgerPostgresProcessRecorder

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        self.datastore = bound_the_wait(self.datastore)

    @contextmanager
    def _creating(self) -> Iterator[None]:
        """Held on a connection of its own, closed after: the lock goes with the
        session whatever happens, and the pool keeps all its connections for
        the creation itself. The schema is created first if it is missing."""
        try:
            if not self.env_create_table():
                yield
                return
            with self._connect() as connection:
                connection.execute("SELECT pg_advisory_lock(%s)", (CREATION_LOCK,))
                self._create_schema(connection, self.datastore.schema)
                yield
        except StoreUnavailable:
            self.close()  # a ledger that cannot start leaves no pool behind
            raise

    def _connect(self) -> psycopg.Connection[Any]:
        """A connection of its own, with the pool's settings and connect timeout;
        a server that refuses it or cannot be reached is :class:`StoreUnavailable`
        in one line naming the server."""
        datastore = cast(LedgerPostgresDatastore, self.datastore)
        kwargs = cast(dict[str, Any], datastore.pool.kwargs)
        settings = {name: value for name, value in kwargs.items() if name != "row_factory"}
        try:
            return psycopg.connect(**settings, autocommit=True)
        except psycopg.OperationalError as error:
            log.error("PostgreSQL at %s cannot be reached: %s", datastore.server, _reason(error))
            raise StoreUnavailable(f"PostgreSQL at {datastore.server} cannot be reached: {_reason(error)}") from None

    @staticmethod
    def _create_schema(connection: psycopg.Connection[Any], schema: str) -> None:
        """``CREATE SCHEMA`` only when it is missing: PostgreSQL checks the right
        to create schemas before IF NOT EXISTS, and a role that owns its schema
        need not have that right."""
        if connection.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is None:
            connection.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
            log.info("created the schema %s", schema)

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        with self._creating():
            return super().aggregate_recorder(purpose)

    def application_recorder(self) -> ApplicationRecorder:
        with self._creating():
            return super().application_recorder()

    def tracking_recorder(
        self, tracking_recorder_class: type[TPostgresTrackingRecorder] | None = None
    ) -> TPostgresTrackingRecorder:
        with self._creating():
            return super().tracking_recorder(tracking_recorder_class)

    def process_recorder(self) -> ProcessRecorder:
        with self._creating():
            return super().process_recorder()
