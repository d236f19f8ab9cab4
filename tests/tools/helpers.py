"""Helpers for the command-line tools' tests: run a tool's ``main`` against a
database, and change stored rows behind the ledger's back as a forger would."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

DATABASE_URL_VARIABLE = "KMO_LEDGER_DATABASE_URL"


TOOL_CLOCK = {"ignore": ["psycopg_pool"]}
"""``freeze_time(..., **TOOL_CLOCK)`` when a tool runs (and closes its PostgreSQL
pool) under a frozen clock: the pool's close waits on a clock that must move."""


@dataclass
class Outcome:
    code: int
    out: str
    err: str


class Tools:
    """Runs tools as a user would, with ``KMO_LEDGER_DATABASE_URL`` set."""

    def __init__(self, monkeypatch, capsys, database_url: str):
        self.capsys = capsys
        self.database_url = database_url
        monkeypatch.setenv(DATABASE_URL_VARIABLE, database_url)

    def run(self, main: Callable[[list[str]], int], *args: str) -> Outcome:
        self.capsys.readouterr()
        code = main(list(args))
        captured = self.capsys.readouterr()
        return Outcome(code, captured.out, captured.err)


class StoredEvents:
    """The events table itself: ``stored_events`` on SQLite, ``kmo_ledger_events``
    in the test's schema on PostgreSQL."""

    def __init__(self, database_url: str):
        self.url = database_url

    def _sqlite(self) -> sqlite3.Connection:
        return sqlite3.connect(self.url[len("sqlite:///") :])

    def _postgres(self):
        import psycopg

        parts = urlsplit(self.url)
        schema = dict(pair.split("=", 1) for pair in parts.query.split("&") if pair)["schema"]
        connection = psycopg.connect(self.url.split("?")[0], autocommit=True)
        return connection, f"{schema}.kmo_ledger_events"

    def state(self, wallet: UUID, version: int) -> bytes:
        if self.url.startswith("sqlite"):
            with closing(self._sqlite()) as db, db:
                row = db.execute(
                    "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = ?",
                    (wallet.hex, version),
                ).fetchone()
            return bytes(row[0])
        connection, table = self._postgres()
        with connection:
            row = connection.execute(
                f"SELECT state FROM {table} WHERE originator_id = %s AND originator_version = %s", (wallet, version)
            ).fetchone()
        return bytes(row[0])

    def update(self, wallet: UUID, version: int, state: bytes) -> None:
        self._set("state", state, wallet, version)

    def set_topic(self, wallet: UUID, version: int, topic: str) -> None:
        self._set("topic", topic, wallet, version)

    def _set(self, column: str, value: Any, wallet: UUID, version: int) -> None:
        if self.url.startswith("sqlite"):
            with closing(self._sqlite()) as db, db:
                db.execute(
                    f"UPDATE stored_events SET {column} = ? WHERE originator_id = ? AND originator_version = ?",
                    (value, wallet.hex, version),
                )
            return
        connection, table = self._postgres()
        with connection:
            connection.execute(
                f"UPDATE {table} SET {column} = %s WHERE originator_id = %s AND originator_version = %s",
                (value, wallet, version),
            )

    def delete(self, wallet: UUID, version: int) -> None:
        if self.url.startswith("sqlite"):
            with closing(self._sqlite()) as db, db:
                db.execute(
                    "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?",
                    (wallet.hex, version),
                )
            return
        connection, table = self._postgres()
        with connection:
            connection.execute(
                f"DELETE FROM {table} WHERE originator_id = %s AND originator_version = %s", (wallet, version)
            )

    def count(self) -> int:
        if self.url.startswith("sqlite"):
            with closing(self._sqlite()) as db, db:
                return db.execute("SELECT count(*) FROM stored_events").fetchone()[0]
        connection, table = self._postgres()
        with connection:
            return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
