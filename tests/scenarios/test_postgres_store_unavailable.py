"""A bounded wait for a connection (#17): a PostgreSQL server that refuses new
connections ("too many clients") or cannot be reached refuses a command or a
read after one connect timeout with ``store_unavailable`` (a 503) and a log
line, instead of waiting minutes; nothing is recorded, and once connections
come back the same command goes through.

"Too many clients" is played on a private scope: a role of the test's own whose
CONNECTION LIMIT is set to 0 (PostgreSQL's refusal, SQLSTATE 53300, is the same
one), never by opening the server's shared connections."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from freezegun import freeze_time

from ledger.build import ledger_at
from ledger.domain.errors import StoreUnavailable
from ledger.storage import persistence_env
from tests.api.conftest import running, write_keys
from tests.conftest import ENTERPRISE, OTHER_ENTERPRISE, training
from tests.scenarios.helpers import Story

CONNECT_TIMEOUT = 5
"""``POSTGRES_CONNECT_TIMEOUT`` as the ledger sets it (``ledger.storage.persistence_env``)."""
ROLE_CONNECTIONS = 20
"""At most this many of the shared server's connections for a test's role (the
API's pool may grow to 16, and creating the tables takes one more)."""
DEADLINE = 60
"""How long a test waits for a call before calling it a hang (the library's own wait was 30 s a try)."""


def on_the_day() -> Any:
    """2 March 2026 for the ledger; the real clock for psycopg and its pool, whose
    background tries to connect are scheduled on the monotonic clock (frozen at
    2026, they would be due decades later and never made)."""
    return freeze_time("2026-03-02 09:00:00", ignore=["psycopg"])


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None
    waited: float = 0.0


def within(seconds: float, call: Callable[[], Any]) -> Outcome:
    """``call()`` in a thread of its own: its outcome and how long it took; a call
    still waiting after ``seconds`` fails the test instead of hanging it."""
    outcome = Outcome()

    def run() -> None:
        started = time.monotonic()
        try:
            outcome.value = call()
        except BaseException as error:  # noqa: BLE001 - the failure is the finding
            outcome.error = error
        outcome.waited = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still waiting for the store after {seconds} s")
    return outcome


@dataclass
class Role:
    """A login role of the test's own, owning the schema in ``url``."""

    name: str
    url: str
    admin: psycopg.Connection[Any]

    def refuse_connections(self) -> None:
        """Every new connection of the role refused with "too many connections",
        and its open ones dropped (a server restarted while full)."""
        self.admin.execute(f"ALTER ROLE {self.name} CONNECTION LIMIT 0")
        self.admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s", (self.name,)
        )

    def admit_connections(self) -> None:
        self.admin.execute(f"ALTER ROLE {self.name} CONNECTION LIMIT {ROLE_CONNECTIONS}")


@pytest.fixture
def role(postgres_server: str) -> Iterator[Role]:
    """A role that is no superuser (a superuser is exempt from connection limits),
    with no CREATE on the database: it owns its schema and nothing else."""
    name = "kmo_t_" + uuid.uuid4().hex[:12]
    schema = "t_" + uuid.uuid4().hex[:12]
    base = postgres_server.split("?")[0]
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN CONNECTION LIMIT {ROLE_CONNECTIONS}")
        try:
            admin.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {name}")
            parts = base.split("://", 1)[1].split("@", 1)[-1]
            yield Role(name, f"postgresql://{name}@{parts}?schema={schema}", admin)
        finally:
            admin.execute(f"ALTER ROLE {name} CONNECTION LIMIT 0")
            admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s", (name,))
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            admin.execute(f"DROP ROLE {name}")


def once_connections_come_back(call: Callable[[], Any]) -> Any:
    """``call()`` as soon as the ledger has a connection again (the pool connects
    anew in the background; a call before that is refused ``store_unavailable``)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            return call()
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise


def test_the_ledger_asks_for_a_connection_for_at_most_the_connect_timeout():
    env = persistence_env("postgresql://ledger@db.example:5432/ledger")
    assert env["POSTGRES_CONNECT_TIMEOUT"] == str(CONNECT_TIMEOUT)


@pytest.mark.postgres
def test_a_store_refusing_connections_refuses_a_command_and_a_read_within_the_wait_and_records_nothing(role, caplog):
    # more connections in the pool than an insert's tries: each found dead, the others are checked
    ledger = ledger_at(role.url, env={"POSTGRES_POOL_SIZE": "4", "POSTGRES_MAX_OVERFLOW": "0"})
    try:
        with on_the_day():
            story = Story(ledger)
        role.refuse_connections()

        def submit() -> str:
            with on_the_day():
                return story.submit(date(2026, 3, 16))

        command = within(DEADLINE, submit)
        assert isinstance(command.error, StoreUnavailable), command.error
        assert "too many connections" in command.error.detail and "\n" not in command.error.detail
        # one wait for the insert and one for the fresh read of its careful retry
        assert command.waited < 2 * CONNECT_TIMEOUT + 3
        read = within(DEADLINE, lambda: ledger.wallet_summary(OTHER_ENTERPRISE))  # not cached: read from the store
        assert isinstance(read.error, StoreUnavailable), read.error
        assert read.waited < CONNECT_TIMEOUT + 3
        refusals = [r for r in caplog.records if r.name == "kmo_ledger.storage" and "no connection" in r.getMessage()]
        assert refusals and "too many connections" in refusals[0].getMessage()

        role.admit_connections()
        assert once_connections_come_back(story.events) == ["WalletOpened"]  # the refused command recorded nothing
        submit()
        assert story.events() == ["WalletOpened", "ApplicationSubmitted"]
    finally:
        ledger.close()


@pytest.mark.postgres
def test_a_command_over_http_on_a_store_refusing_connections_answers_503_store_unavailable(role, tmp_path: Path):
    with running(role.url, write_keys(tmp_path / "keys.json")) as api:
        with on_the_day():
            api.open_wallet(ENTERPRISE)
        role.refuse_connections()

        def submit() -> Any:
            with on_the_day():
                return api.post(f"/wallets/{ENTERPRISE}/applications", training(date(2026, 3, 16)))

        answer = within(DEADLINE, submit)
        assert answer.error is None, answer.error
        assert answer.value.status_code == 503, answer.value.text
        assert answer.value.json()["code"] == "store_unavailable"
        role.admit_connections()
        ledger = api.client.app.state.ledger
        assert once_connections_come_back(lambda: ledger.wallet_events(ENTERPRISE))
        assert api.events() == ["WalletOpened"]


@pytest.mark.postgres
def test_a_ledger_started_while_the_store_refuses_connections_says_why_in_one_line(role):
    role.refuse_connections()
    started = within(DEADLINE, lambda: ledger_at(role.url))
    if started.error is None:
        started.value.close()
    assert isinstance(started.error, StoreUnavailable), started.error
    host_port = role.url.split("@", 1)[1].split("/", 1)[0]
    assert f"PostgreSQL at {host_port}" in started.error.detail
    assert "too many connections" in started.error.detail and "\n" not in started.error.detail
    assert started.waited < CONNECT_TIMEOUT + 3


@pytest.mark.parametrize("create_table", ["y", "n"])
def test_a_ledger_on_an_unreachable_store_says_why_in_one_line_within_the_connect_timeout(create_table):
    """Port 1 on this machine: nothing listens there (no server needed)."""
    url = "postgresql://postgres@127.0.0.1:1/test?schema=nowhere"
    started = within(DEADLINE, lambda: ledger_at(url, env={"CREATE_TABLE": create_table}))
    if started.error is None:
        started.value.close()
    assert isinstance(started.error, StoreUnavailable), started.error
    assert "PostgreSQL at 127.0.0.1:1" in started.error.detail and "\n" not in started.error.detail
    assert "refused" in started.error.detail.lower()
    assert started.waited < CONNECT_TIMEOUT + 3
