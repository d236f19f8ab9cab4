"""Where the read models live: a tiny adapter over plain ``sqlite3`` and ``psycopg``.

The views are written with one SQL text (``?`` placeholders, ``INSERT ... ON
CONFLICT``, TEXT dates, BIGINT cents), which both SQLite and PostgreSQL speak;
the adapter only translates placeholders, bulk-loads with ``COPY`` on
PostgreSQL, locks the tracking row and sorts text byte-wise (``COLLATE "C"``)
so two targets compare row for row.
"""

from __future__ import annotations

import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ledger.domain.errors import ValidationFailed
from ledger.storage import CONNECT_TIMEOUT, POSTGRES_MODULE, SQLITE_MODULE

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
"""COPY's text format: a backslash, tab, newline or carriage return in a value is escaped."""


def copy_text(rows: Sequence[Sequence[Any]]) -> str:
    """Rows in COPY's text format. Escaping value by value is the slow part, and
    views rarely hold a tab, newline or backslash: the rows are joined as they
    are first, and escaped one by one only if the joined text shows one."""
    text = (
        "\n".join(
            "\t".join([value if type(value) is str else "\\N" if value is None else str(value) for value in row])
            for row in rows
        )
        + "\n"
    )
    nulls = sum(row.count(None) for row in rows)
    separators = len(rows) * (len(rows[0]) - 1)
    if (
        text.count("\t") == separators
        and text.count("\n") == len(rows)
        and text.count("\\") == nulls
        and "\r" not in text
    ):
        return text
    return "".join(
        "\t".join(
            [
                value.translate(_COPY_ESCAPES) if type(value) is str else "\\N" if value is None else str(value)
                for value in row
            ]
        )
        + "\n"
        for row in rows
    )


_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Target(ABC):
    """A connection to the database holding the read models."""

    dialect: str
    for_update: str = ""
    """Appended to the tracking row's SELECT inside a transaction to lock it."""
    collate: str = ""
    """Appended to text sort keys: byte-wise order on every dialect."""
    table_options: str = ""
    """Appended to CREATE TABLE."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement (``?`` placeholders)."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Every row of a (small) query."""

    @abstractmethod
    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 2000) -> Iterator[tuple]:
        """Rows of a query in chunks, never all at once."""

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row of parameters."""

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Bulk insert (``COPY`` on PostgreSQL)."""
        if rows:
            marks = ", ".join("?" * len(columns))
            self.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    @abstractmethod
    def transaction(self):  # -> ContextManager[None]
        """Everything inside commits together, or not at all."""

    @abstractmethod
    def table_exists(self, table: str) -> bool:
        """Whether the views' table is there."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection(s)."""


ROWS_PER_INSERT = 64
"""Rows per multi-row ``INSERT`` on SQLite (26 columns at most: within its 32,766 parameters)."""


class SqliteTarget(Target):
    dialect = "sqlite"

    def __init__(self, path: str):
        self.path = path
        if path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(
            path, uri=path.startswith("file:"), isolation_level=None, check_same_thread=False, timeout=30
        )
        if path != ":memory:":
            self.connection.execute("PRAGMA journal_mode=WAL")
        # Views are rebuildable and written with their position in one
        # transaction: losing the last commits on a power cut is replayed.
        self.connection.execute("PRAGMA synchronous=NORMAL")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.connection.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.connection.execute(sql, params).fetchall()

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 2000) -> Iterator[tuple]:
        cursor = self.connection.execute(sql, params)
        while rows := cursor.fetchmany(size):
            yield from rows

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.connection.executemany(sql, rows)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Many rows per ``INSERT`` (``ROWS_PER_INSERT``): SQLite runs one statement
        per set of parameters, so fewer, longer statements write the same rows
        with less work per row (a rebuild's inserts took a sixth less time)."""
        whole = len(rows) - len(rows) % ROWS_PER_INSERT
        if whole:
            width = len(columns)
            values = ", ".join(["(" + ", ".join("?" * width) + ")"] * ROWS_PER_INSERT)
            flat = list(chain.from_iterable(rows[:whole]))
            step = width * ROWS_PER_INSERT
            self.connection.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}",
                (flat[start : start + step] for start in range(0, len(flat), step)),
            )
        super().insert_rows(table, columns, rows[whole:])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def table_exists(self, table: str) -> bool:
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)))

    def close(self) -> None:
        self.connection.close()


class PostgresTarget(Target):
    dialect = "postgresql"
    for_update = " FOR UPDATE"
    collate = ' COLLATE "C"'

    def __init__(self, conninfo: str, schema: str):
        import psycopg

        self.schema = schema
        # the ledger's own wait for a connection (POSTGRES_CONNECT_TIMEOUT), not libpq's none
        self.connection = psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        # only when missing: PostgreSQL checks CREATE on the database before IF NOT
        # EXISTS, and a role that owns its schema need not have that right
        exists = self.connection.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if exists is None:
            self.connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self.connection.execute(f'SET search_path TO "{schema}"')

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.connection.execute(self._sql(sql), params, prepare=False)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.connection.execute(self._sql(sql), params).fetchall()

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 2000) -> Iterator[tuple]:
        with self.connection.transaction(), self.connection.cursor(name="projection_stream") as cursor:
            cursor.itersize = size
            cursor.execute(self._sql(sql), params)
            yield from cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.connection.cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """``COPY ... FROM STDIN`` in text form, formatted here (psycopg's own
        per-value adaptation costs several times more)."""
        if not rows:
            return
        with self.connection.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                copy.write(copy_text(rows).encode())

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.connection.transaction():
            yield

    def table_exists(self, table: str) -> bool:
        return bool(
            self.query(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                (self.schema, table),
            )
        )

    def close(self) -> None:
        self.connection.close()


def connect(database_url: str) -> Target:
    """Open the read-model database named by a ``sqlite:///`` or ``postgresql://`` URL
    (``?schema=`` picks the PostgreSQL schema, as for the events)."""
    if database_url.startswith("sqlite:///"):
        path = database_url[len("sqlite:///") :]
        if not path:
            raise ValidationFailed("a sqlite URL names a file: sqlite:///path/to/ledger.db")
        return SqliteTarget(path)
    parts = urlsplit(database_url)
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        schema = "public"
        for pair in filter(None, parts.query.split("&")):
            key, _, value = pair.partition("=")
            if key == "schema" and value:
                schema = unquote(value)
        if not _SCHEMA_NAME.match(schema):
            raise ValidationFailed(f"not a plain schema name: {schema!r}")
        conninfo = parts._replace(scheme="postgresql", query="", fragment="").geturl()
        return PostgresTarget(conninfo, schema)
    raise ValidationFailed(
        f"unsupported database URL {database_url!r} for the read models: use sqlite:///path or postgresql://..."
    )


def ledger_url(ledger: Any) -> str:
    """The database URL a :class:`~ledger.application.KmoLedger` stores its events in,
    so the views can live beside them; ``sqlite:///:memory:`` for the in-memory store."""
    env = ledger.env
    module = env.get("PERSISTENCE_MODULE", "")
    if module == SQLITE_MODULE:
        return "sqlite:///" + env.get("SQLITE_DBNAME")
    if module == POSTGRES_MODULE:
        user = env.get("POSTGRES_USER", "postgres")
        password = env.get("POSTGRES_PASSWORD", "")
        credentials = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        url = (
            f"postgresql://{credentials}@{env.get('POSTGRES_HOST', '127.0.0.1')}:"
            f"{env.get('POSTGRES_PORT', '5432')}/{env.get('POSTGRES_DBNAME', 'postgres')}"
        )
        schema = env.get("POSTGRES_SCHEMA", "")
        return url + (f"?schema={schema}" if schema else "")
    return "sqlite:///:memory:"


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
