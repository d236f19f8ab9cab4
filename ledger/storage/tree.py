"""The ledger-wide Merkle tree's tables, beside the events: its leaves and
perfect subtree hashes, its signed checkpoints, and the last checkpoint that
``kmo-ledger verify`` checked.

- ``kmo_ledger_tree_leaves``: one row per stored record, in notification
  order: ``leaf_index`` (its position, from 0), the notification id, the
  record's id and version, and its leaf hash (RFC 6962: ``SHA-256(0x00 ||
  leaf input)``). Notification ids may have gaps (PostgreSQL's sequences do),
  leaf indexes never do.
- ``kmo_ledger_tree_nodes``: the hash of every completed perfect subtree of
  two leaves or more, by ``(level, idx)`` (:mod:`ledger.audit.merkle`), so a
  proof costs one primary-key read per level.
- ``kmo_ledger_checkpoints``: each signed checkpoint, numbered from 1, with the
  size and root of the checkpoint before it and the public key (hex) it
  verifies with.
- ``kmo_ledger_tree_verified``: one row, the checkpoint ``verify`` last
  checked and the tree's right edge there, so the next run starts from it.

Rows are written only by :meth:`TreeTables.write`, one transaction at a time
across every process: SQLite's writer turn and ``BEGIN IMMEDIATE``, a
PostgreSQL transaction-level advisory lock. None of this is evidence by
itself: the events are, and ``verify`` recomputes the tree from them.
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from ledger.storage.sqlite import tuple_rows

if TYPE_CHECKING:
    from ledger.application import KmoLedger

LEAVES = "kmo_ledger_tree_leaves"
NODES = "kmo_ledger_tree_nodes"
CHECKPOINTS = "kmo_ledger_checkpoints"
VERIFIED = "kmo_ledger_tree_verified"
TREE_LOCK = 0x6B6D6F2D74726565  # "kmo-tree": PostgreSQL's advisory lock of the tree's writers

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {leaves} (leaf_index BIGINT PRIMARY KEY, notification_id BIGINT NOT NULL UNIQUE, "
    "originator_id TEXT NOT NULL, originator_version BIGINT NOT NULL, hash {blob} NOT NULL)",
    "CREATE INDEX IF NOT EXISTS {leaves_short}_record ON {leaves} (originator_id, originator_version)",
    "CREATE TABLE IF NOT EXISTS {nodes} (level INTEGER NOT NULL, idx BIGINT NOT NULL, hash {blob} NOT NULL, "
    "PRIMARY KEY (level, idx))",
    "CREATE TABLE IF NOT EXISTS {checkpoints} (number BIGINT PRIMARY KEY, tree_size BIGINT NOT NULL, "
    "root_hash TEXT NOT NULL, timestamp TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL, "
    "previous_size BIGINT, previous_root TEXT, public_key TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {verified} (id INTEGER PRIMARY KEY CHECK (id = 1), number BIGINT NOT NULL, "
    "tree_size BIGINT NOT NULL, notification_id BIGINT NOT NULL, peaks TEXT NOT NULL, verified_at TEXT NOT NULL)",
)
CHECKPOINT_COLUMNS = (
    "number",
    "tree_size",
    "root_hash",
    "timestamp",
    "key_id",
    "signature",
    "previous_size",
    "previous_root",
    "public_key",
)


class Writing(ABC):
    """One transaction of the tree's writer: statements run in it, in order."""

    @abstractmethod
    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]: ...

    @abstractmethod
    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class TreeTables(ABC):
    """The tables of one store, read one statement at a time and written one
    transaction at a time (:meth:`write`)."""

    marker = "?"
    blob = "BLOB"

    def __init__(self, names: dict[str, str]):
        self.names = names

    def sql(self, statement: str) -> str:
        return statement.format(**self.names).replace("?", self.marker)

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """One read statement, formatted (:meth:`sql`)."""

    @abstractmethod
    def write(self) -> Any:
        """A context manager giving a :class:`Writing`: one transaction, the
        only writer of the tree in any process until it ends."""

    def create(self) -> None:
        with self.write() as writing:
            for statement in _SCHEMA:
                writing.run(self.sql(statement.replace("{blob}", self.blob)))

    # ---------------------------------------------------------------- reads

    def _read(self, sql: str, params: Sequence[Any] = (), writing: Writing | None = None) -> list[tuple]:
        return writing.run(sql, params) if writing is not None else self.query(sql, params)

    def size(self, writing: Writing | None = None) -> tuple[int, int]:
        """(leaves stored, the last notification id they cover; 0 for none)."""
        sql = self.sql("SELECT leaf_index, notification_id FROM {leaves} ORDER BY leaf_index DESC LIMIT 1")
        rows = self._read(sql, (), writing)
        return (int(rows[0][0]) + 1, int(rows[0][1])) if rows else (0, 0)

    def perfect(self, level: int, index: int, writing: Writing | None = None) -> bytes | None:
        if level == 0:
            rows = self._read(self.sql("SELECT hash FROM {leaves} WHERE leaf_index = ?"), (index,), writing)
        else:
            sql = self.sql("SELECT hash FROM {nodes} WHERE level = ? AND idx = ?")
            rows = self._read(sql, (level, index), writing)
        return bytes(rows[0][0]) if rows else None

    def perfect_many(self, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored hashes of the perfect subtrees ``wanted`` (level, index): one query per table."""
        found: dict[tuple[int, int], bytes] = {}
        leaves = sorted({index for level, index in wanted if level == 0})
        if leaves:
            marks = ", ".join("?" for _ in leaves)
            sql = self.sql(f"SELECT leaf_index, hash FROM {{leaves}} WHERE leaf_index IN ({marks})")
            found.update(((0, int(index)), bytes(hashed)) for index, hashed in self.query(sql, leaves))
        nodes = sorted({(level, index) for level, index in wanted if level > 0})
        if nodes:
            where = " OR ".join("(level = ? AND idx = ?)" for _ in nodes)
            sql = self.sql(f"SELECT level, idx, hash FROM {{nodes}} WHERE {where}")
            params = [value for pair in nodes for value in pair]
            found.update(((int(level), int(index)), bytes(hashed)) for level, index, hashed in self.query(sql, params))
        return found

    def leaf_of(self, originator_id: str, version: int) -> int | None:
        rows = self.query(
            self.sql("SELECT leaf_index FROM {leaves} WHERE originator_id = ? AND originator_version = ?"),
            (originator_id, version),
        )
        return int(rows[0][0]) if rows else None

    def leaves(self, start: int, limit: int) -> list[tuple[int, int, str, int, bytes]]:
        """Stored leaves from ``start``: (index, notification id, record id, version, hash)."""
        rows = self.query(
            self.sql(
                "SELECT leaf_index, notification_id, originator_id, originator_version, hash FROM {leaves} "
                "WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?"
            ),
            (start, limit),
        )
        return [(int(i), int(n), str(o), int(v), bytes(h)) for i, n, o, v, h in rows]

    def leaf_hashes(self, start: int, limit: int) -> list[bytes]:
        """The stored leaf hashes from ``start``, in order (fewer at the tree's end)."""
        sql = self.sql("SELECT hash FROM {leaves} WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?")
        return [bytes(row[0]) for row in self.query(sql, (start, limit))]

    def checkpoints(self, after: int = 0) -> list[dict[str, Any]]:
        """Every checkpoint numbered above ``after``, oldest first."""
        rows = self.query(
            self.sql(f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM {{checkpoints}} WHERE number > ? ORDER BY number"),
            (after,),
        )
        return [dict(zip(CHECKPOINT_COLUMNS, row, strict=True)) for row in rows]

    def latest_checkpoint(self, writing: Writing | None = None) -> dict[str, Any] | None:
        sql = self.sql(f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM {{checkpoints}} ORDER BY number DESC LIMIT 1")
        rows = self._read(sql, (), writing)
        return dict(zip(CHECKPOINT_COLUMNS, rows[0], strict=True)) if rows else None

    def verified(self) -> tuple[int, int, int, str] | None:
        """(checkpoint number, tree size, notification id, peaks) last verified."""
        rows = self.query(self.sql("SELECT number, tree_size, notification_id, peaks FROM {verified} WHERE id = 1"))
        return (int(rows[0][0]), int(rows[0][1]), int(rows[0][2]), str(rows[0][3])) if rows else None

    @abstractmethod
    def records_up_to(self, recorder: Any, notification_id: int) -> int:
        """How many records the events table holds with a notification id up to ``notification_id``."""

    # ---------------------------------------------------------------- writes (in a Writing)

    def add_leaves(self, writing: Writing, leaves: Sequence[tuple[int, int, str, int, bytes]]) -> None:
        writing.run_many(
            self.sql(
                "INSERT INTO {leaves} (leaf_index, notification_id, originator_id, originator_version, hash) "
                "VALUES (?, ?, ?, ?, ?)"
            ),
            leaves,
        )

    def add_nodes(self, writing: Writing, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        if nodes:
            writing.run_many(self.sql("INSERT INTO {nodes} (level, idx, hash) VALUES (?, ?, ?)"), nodes)

    def add_checkpoint(self, writing: Writing, row: dict[str, Any]) -> None:
        columns = ", ".join(CHECKPOINT_COLUMNS)
        marks = ", ".join("?" for _ in CHECKPOINT_COLUMNS)
        writing.run(
            self.sql(f"INSERT INTO {{checkpoints}} ({columns}) VALUES ({marks})"),
            [row[c] for c in CHECKPOINT_COLUMNS],
        )

    def set_verified(self, number: int, tree_size: int, notification_id: int, peaks: str, when: str) -> None:
        with self.write() as writing:
            writing.run(self.sql("DELETE FROM {verified}"))
            writing.run(
                self.sql(
                    "INSERT INTO {verified} (id, number, tree_size, notification_id, peaks, verified_at) "
                    "VALUES (1, ?, ?, ?, ?, ?)"
                ),
                (number, tree_size, notification_id, peaks, when),
            )

    def close(self) -> None:  # noqa: B027  # only an in-memory store holds anything of its own
        pass


class _SqliteWriting(Writing):
    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.connection.execute(sql, tuple(params)).fetchall()

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.connection.executemany(sql, rows)


class SqliteTreeTables(TreeTables):
    """On the ledger's SQLite file, through the library's connections (auto-commit:
    a write is ``BEGIN IMMEDIATE`` ... ``COMMIT`` in the writer's turn)."""

    def __init__(self, datastore: Any, writer: Any):
        names = {"leaves": LEAVES, "leaves_short": LEAVES, "nodes": NODES, "checkpoints": CHECKPOINTS}
        super().__init__(names | {"verified": VERIFIED})
        self.datastore, self.writer = datastore, writer or nullcontext()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return tuple_rows(self.datastore, sql, params)

    @contextmanager
    def write(self) -> Iterator[Writing]:
        with self.writer, self.datastore.get_connection(commit=True) as connection:
            sqlite = connection._sqlite_conn
            if sqlite.in_transaction:
                sqlite.rollback()
            sqlite.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteWriting(sqlite)
            except BaseException:
                sqlite.rollback()
                raise
            sqlite.execute("COMMIT")

    def records_up_to(self, recorder: Any, notification_id: int) -> int:
        sql = f"SELECT count(*) FROM {recorder.events_table_name} WHERE rowid <= ?"
        return int(self.query(sql, (notification_id,))[0][0])


class MemoryTreeTables(TreeTables):
    """For a ledger in memory (tests): the same tables in an SQLite database in
    memory, one statement at a time."""

    def __init__(self) -> None:
        names = {"leaves": LEAVES, "leaves_short": LEAVES, "nodes": NODES, "checkpoints": CHECKPOINTS}
        super().__init__(names | {"verified": VERIFIED})
        self.connection = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self.lock = threading.RLock()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.lock:
            return self.connection.execute(sql, tuple(params)).fetchall()

    @contextmanager
    def write(self) -> Iterator[Writing]:
        with self.lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteWriting(self.connection)
            except BaseException:
                self.connection.rollback()
                raise
            self.connection.execute("COMMIT")

    def records_up_to(self, recorder: Any, notification_id: int) -> int:
        return len(recorder.select_notifications(1, notification_id + 1, stop=notification_id))

    def close(self) -> None:
        self.connection.close()


class _PostgresWriting(Writing):
    def __init__(self, cursor: Any):
        self.cursor = cursor

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        self.cursor.execute(sql, tuple(params))
        return [tuple(row.values()) for row in self.cursor.fetchall()] if self.cursor.description else []

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.cursor.executemany(sql, rows)


class PostgresTreeTables(TreeTables):
    """In the ledger's PostgreSQL schema; writers take the advisory lock
    :data:`TREE_LOCK` for their transaction."""

    marker = "%s"
    blob = "BYTEA"

    def __init__(self, datastore: Any):
        from psycopg.sql import SQL, Identifier

        def qualified(table: str) -> str:
            return SQL("{}.{}").format(Identifier(datastore.schema), Identifier(table)).as_string(None)

        super().__init__(
            {
                "leaves": qualified(LEAVES),
                "leaves_short": LEAVES,
                "nodes": qualified(NODES),
                "checkpoints": qualified(CHECKPOINTS),
                "verified": qualified(VERIFIED),
            }
        )
        self.datastore = datastore

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(sql, tuple(params))
            return [tuple(row.values()) for row in cursor.fetchall()] if cursor.description else []

    def records_up_to(self, recorder: Any, notification_id: int) -> int:
        from psycopg.sql import SQL, Identifier

        table = SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier(recorder.events_table_name))
        sql = SQL("SELECT count(*) AS n FROM {} WHERE notification_id <= %s").format(table).as_string(None)
        return int(self.query(sql, (notification_id,))[0][0])

    @contextmanager
    def write(self) -> Iterator[Writing]:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (TREE_LOCK,))
            yield _PostgresWriting(cursor)


_made_lock = threading.Lock()


def tree_tables(ledger: KmoLedger) -> TreeTables:
    """The tree's tables of the ledger's store, made if missing: once per ledger
    (kept on its recorder), so a read after that writes nothing."""
    with _made_lock:
        tables: TreeTables | None = getattr(ledger.recorder, "_kmo_tree_tables", None)
        if tables is not None:
            return tables
        datastore = getattr(ledger.recorder, "datastore", None)
        if datastore is None:
            tables = MemoryTreeTables()
        else:
            from eventsourcing.sqlite import SQLiteDatastore

            if isinstance(datastore, SQLiteDatastore):
                tables = SqliteTreeTables(datastore, ledger.writer_turn)
            else:
                tables = PostgresTreeTables(datastore)
        tables.create()
        ledger.recorder._kmo_tree_tables = tables  # type: ignore[attr-defined]
        return tables
