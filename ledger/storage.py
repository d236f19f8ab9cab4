"""Where events live: ``KMO_LEDGER_DATABASE_URL`` turned into the eventsourcing
library's persistence settings (SQLite file by default, PostgreSQL for real
deployments)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

try:
    import fcntl
except ImportError:  # not on Windows: writers of one process still queue
    fcntl = None  # type: ignore[assignment]

from ledger.errors import ValidationFailed

DEFAULT_DATABASE_URL = "sqlite:///" + str(Path("var") / "ledger.db")
SQLITE_MODULE = "ledger.sqlite_store:LedgerSQLiteFactory"
POSTGRES_MODULE = "ledger.postgres_store:LedgerPostgresFactory"


def persistence_env(database_url: str) -> dict[str, str]:
    """The library environment for a database URL; creates a SQLite file's folder."""
    if database_url.startswith("sqlite:///"):
        path = database_url[len("sqlite:///"):]
        if not path:
            raise ValidationFailed("a sqlite URL names a file: sqlite:///path/to/ledger.db")
        if path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": SQLITE_MODULE,
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    parts = urlsplit(database_url)
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        env = {
            "PERSISTENCE_MODULE": POSTGRES_MODULE,
            # the insert is one call of a stored function (ledger.postgres_store)
            "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
            "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": "8",
            "POSTGRES_MAX_OVERFLOW": "8",
            "POSTGRES_LOCK_TIMEOUT": "10",
        }
        for pair in filter(None, parts.query.split("&")):
            key, _, value = pair.partition("=")
            if key == "schema":
                env["POSTGRES_SCHEMA"] = value
        return env
    if database_url == "memory://":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    raise ValidationFailed(
        f"unsupported database URL {database_url!r}: use sqlite:///path or postgresql://user@host:port/db"
    )


class WriterTurn:
    """SQLite's one writer at a time, taken in turn instead of fought over.

    Writers that meet inside SQLite wait in its busy handler, which sleeps
    (1, 2, 5, 10 ... ms) and tries again; under concurrent commands that
    sleeping, not the writing, sets the pace. Here the threads of a process
    queue on a lock and the processes on one file (``<database>.writers``,
    an ``flock``), and the kernel wakes the next writer the moment the last
    one is done. Every writer of a file (the ledger's commands, views kept in
    the same file) takes this turn; a process that does not (an older
    version, another tool) still meets them in SQLite's busy handler, as
    before, so the turn only ever makes waiting shorter."""

    def __init__(self, database_path: str | None):
        self._threads = threading.Lock()
        self._file: int | None = None
        if fcntl is not None and database_path and database_path != ":memory:" and not database_path.startswith("file:"):
            self._file = os.open(database_path + ".writers", os.O_RDWR | os.O_CREAT, 0o644)

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise

    def __exit__(self, *_exc: Any) -> None:
        try:
            if self._file is not None:
                fcntl.flock(self._file, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        with self._threads:
            if self._file is not None:
                os.close(self._file)
                self._file = None
