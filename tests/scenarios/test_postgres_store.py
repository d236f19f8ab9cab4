"""PostgreSQL: a command's events go in through the ledger's own stored function,
which takes the table lock that keeps commit order = notification order; the
tables and the views are created one process at a time."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import psycopg
import pytest

from ledger.application import KmoLedger
from ledger.domain import commands as c
from projections import Projector, Queries
from tests.conftest import BACK_OFFICE, ENTERPRISE, sme

T = TypeVar("T")


@pytest.mark.postgres
def test_commands_insert_through_the_locking_function_even_if_the_library_recreates_its_own(postgres_url):
    base, schema = postgres_url.split("?schema=")
    ledger = KmoLedger(postgres_url)
    try:
        with psycopg.connect(base, autocommit=True) as connection:
            # what an older process (or the stock library) installs at its start
            connection.execute(f"DROP FUNCTION IF EXISTS {schema}.es_insert_events_uuid")
            source = connection.execute(
                "SELECT prosrc FROM pg_proc JOIN pg_namespace n ON n.oid = pronamespace "
                "WHERE nspname = %s AND proname = 'kmo_ledger_insert_events_uuid'",
                (schema,),
            ).fetchone()
        assert source is not None and "LOCK TABLE" in source[0]
        wallet = ledger.open_wallet(c.OpenWallet(enterprise_number=ENTERPRISE, name="Bakkerij", sme=sme()), BACK_OFFICE)
        assert ledger.recorder.max_notification_id() == 1
        assert ledger.get_wallet(ENTERPRISE).version == wallet.version
    finally:
        ledger.close()


def all_at_once(count: int, make: Callable[[], T]) -> tuple[list[T], list[BaseException]]:
    """``make()`` in ``count`` threads released together: what they made, what failed."""
    gate = threading.Barrier(count)
    made: list[T] = []
    failures: list[BaseException] = []

    def run() -> None:
        gate.wait()
        try:
            made.append(make())
        except BaseException as error:  # noqa: BLE001 - the failure is the finding
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return made, failures


@pytest.mark.postgres
def test_ledgers_starting_together_on_a_fresh_schema_all_start(postgres_url):
    """``serve --workers`` starts its processes at once: each creates the tables,
    types and functions, one at a time (CREATE TYPE has no IF NOT EXISTS)."""
    started, failures = all_at_once(6, lambda: KmoLedger(postgres_url))
    try:
        assert failures == [] and len(started) == 6
        started[0].open_wallet(c.OpenWallet(enterprise_number=ENTERPRISE, name="Bakkerij", sme=sme()), BACK_OFFICE)
        assert started[-1].get_wallet(ENTERPRISE).version == 1
    finally:
        for ledger in started:
            ledger.close()


@pytest.mark.postgres
def test_read_models_opened_together_on_a_fresh_schema_all_open(postgres_url):
    """Each ``serve --workers`` process opens the read models on its first read:
    the views are created one process at a time."""
    from projections import Projector

    ledger = KmoLedger(postgres_url)
    opened, failures = all_at_once(6, lambda: Projector(ledger))
    try:
        assert failures == [] and len(opened) == 6
    finally:
        for projector in opened:
            projector.close()
        ledger.close()


@pytest.mark.postgres
def test_a_ledger_on_a_missing_schema_creates_it(postgres_server):
    """``?schema=name`` for a schema that does not exist yet: the ledger creates it
    (with its tables) instead of failing on ``CREATE TYPE``."""
    base = postgres_server.split("?")[0]
    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        ledger = KmoLedger(f"{base}?schema={schema}")
        try:
            ledger.open_wallet(c.OpenWallet(enterprise_number=ENTERPRISE, name="Bakkerij", sme=sme()), BACK_OFFICE)
            assert ledger.get_wallet(ENTERPRISE).version == 1
        finally:
            ledger.close()
        with psycopg.connect(base) as connection:
            tables = connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
            ).fetchall()
        assert ("kmo_ledger_events",) in tables
    finally:
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.mark.postgres
def test_a_role_that_owns_its_schema_keeps_events_and_read_models_there_without_create_on_the_database(
    postgres_server,
):
    """The README's recipe: a role that may create nothing but owns its schema."""
    base = postgres_server.split("?")[0]
    role, schema = "kmo_" + uuid.uuid4().hex[:10], "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {role} LOGIN")
        connection.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {role}")
    url = urlsplit(base)._replace(netloc=f"{role}@{urlsplit(base).hostname}:{urlsplit(base).port or 5432}").geturl()
    try:
        ledger = KmoLedger(f"{url}?schema={schema}")
        try:
            ledger.open_wallet(c.OpenWallet(enterprise_number=ENTERPRISE, name="Bakkerij", sme=sme()), BACK_OFFICE)
            with Projector(ledger) as projector:
                assert projector.catch_up() == 1
            views = Queries(f"{url}?schema={schema}")
            try:
                assert views.balances(ENTERPRISE)["held"]["own_share"] == "0.00"
            finally:
                views.close()
        finally:
            ledger.close()
    finally:
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            connection.execute(f"DROP ROLE IF EXISTS {role}")
