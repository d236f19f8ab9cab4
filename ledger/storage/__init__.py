"""Where events live: ``KMO_LEDGER_DATABASE_URL`` turned into the eventsourcing
library's persistence settings (SQLite file by default, PostgreSQL for real
deployments)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ledger.domain.errors import ValidationFailed

DEFAULT_DATABASE_URL = "sqlite:///" + str(Path("var") / "ledger.db")
SQLITE_MODULE = "ledger.storage.sqlite:LedgerSQLiteFactory"
POSTGRES_MODULE = "ledger.storage.postgres:LedgerPostgresFactory"
CONNECT_TIMEOUT = 5
"""Seconds the ledger waits for a PostgreSQL connection before it says the store is unavailable."""
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
"""The ledger's files hold names, amounts and stored responses: its owner alone
may read them (the folders it creates too)."""


def private_folder(path: Path) -> None:
    """Create ``path`` and any missing parent, each readable by its owner only
    (0700); folders that exist already are left as they are."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_FOLDER)
        except FileExistsError:  # made meanwhile by someone else: theirs, as it is
            if not folder.is_dir():
                raise


def persistence_env(database_url: str) -> dict[str, str]:
    """The library environment for a database URL. A SQLite file (and its
    folder) is created owner-only when the store opens it (``ledger.storage.sqlite``)."""
    if database_url.startswith("sqlite:///"):
        path = database_url[len("sqlite:///") :]
        if not path:
            raise ValidationFailed("a sqlite URL names a file: sqlite:///path/to/ledger.db")
        return {
            "PERSISTENCE_MODULE": SQLITE_MODULE,
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    parts = urlsplit(database_url)
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        env = {
            "PERSISTENCE_MODULE": POSTGRES_MODULE,
            # the insert is one call of a stored function (ledger.storage.postgres)
            "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
            "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": "8",
            "POSTGRES_MAX_OVERFLOW": "8",
            "POSTGRES_LOCK_TIMEOUT": "10",
            # the wait for a connection, and for each try to connect: past it a
            # command or read is refused store_unavailable (ledger.storage.postgres)
            "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
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
