"""Whether a ledger is there, asked without creating anything.

Opening a ledger creates its store when it is missing (a SQLite file and its
folder, a PostgreSQL schema and tables): right for ``serve``, wrong for a tool
that only reads, which would answer "no wallet" from an empty ledger made in
the wrong folder. :func:`missing_ledger` looks first: a SQLite file is opened
read-only, a PostgreSQL server is asked for the events table in the schema.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing

from ledger.domain.errors import StoreUnavailable
from ledger.storage import POSTGRES_MODULE, SQLITE_MODULE, persistence_env

SQLITE_EVENTS_TABLE = "stored_events"
POSTGRES_EVENTS_TABLE = "kmo_ledger_events"
"""The events tables the library names (after the application, ``kmo_ledger``, on PostgreSQL)."""


def where(database_url: str) -> str:
    """The store in words for a message: a SQLite file's absolute path, a
    PostgreSQL URL without its password."""
    env = persistence_env(database_url)
    if env["PERSISTENCE_MODULE"] == SQLITE_MODULE:
        return os.path.abspath(env["SQLITE_DBNAME"])
    if env["PERSISTENCE_MODULE"] == POSTGRES_MODULE:
        scheme, rest = database_url.split("://", 1)
        if "@" in rest:
            credentials, host = rest.rsplit("@", 1)
            return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return database_url


def missing_ledger(database_url: str) -> str | None:
    """Why there is no ledger at ``database_url`` ("no ledger at PATH"), or None
    when its events table is there. Nothing is created either way. A PostgreSQL
    server that cannot be reached is :class:`StoreUnavailable`."""
    env = persistence_env(database_url)
    module = env["PERSISTENCE_MODULE"]
    if module == SQLITE_MODULE:
        found = _sqlite_has_events(env["SQLITE_DBNAME"])
    elif module == POSTGRES_MODULE:
        found = _postgres_has_events(env)
    else:  # in memory: nothing on disk to find or to create
        return None
    return None if found else f"no ledger at {where(database_url)}"


def _sqlite_has_events(path: str) -> bool:
    if ":memory:" in path or "mode=memory" in path or path.startswith("file:"):
        return True  # SQLite's own names and URIs are left to SQLite (as ledger.storage.sqlite does)
    if not os.path.isfile(path):
        return False
    try:
        with closing(sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)) as connection:
            row = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SQLITE_EVENTS_TABLE,)
            ).fetchone()
    except sqlite3.DatabaseError:  # not a database at all
        return False
    return row is not None


def _postgres_has_events(env: dict[str, str]) -> bool:
    import psycopg

    server = f"{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}"
    try:
        connection = psycopg.connect(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"] or None,
            connect_timeout=int(os.environ.get("POSTGRES_CONNECT_TIMEOUT") or env["POSTGRES_CONNECT_TIMEOUT"]),
            autocommit=True,
        )
    except psycopg.OperationalError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        reason = reason.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
        if f'database "{env["POSTGRES_DBNAME"]}" does not exist' in reason:
            return False
        raise StoreUnavailable(f"PostgreSQL at {server} cannot be reached: {reason}") from None
    with connection:
        row = connection.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (env.get("POSTGRES_SCHEMA") or "public", POSTGRES_EVENTS_TABLE),
        ).fetchone()
    return row is not None
