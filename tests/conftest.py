"""Shared fixtures: ledgers on every store, a movable clock, example commands.

PostgreSQL tests run against ``KMO_LEDGER_TEST_POSTGRES_URL`` (default the
local server); each test gets a schema of its own. With ``CI=true`` a missing
server fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import freezegun
import pytest

from ledger.application import KmoLedger
from ledger.domain.events import Actor

# a frozen clock must not freeze the PostgreSQL pool's own scheduler (its reconnects)
freezegun.configure(extend_ignore_list=["psycopg", "psycopg_pool"])

POSTGRES_URL = os.environ.get("KMO_LEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACK_OFFICE = Actor(key_id="bo-test", role="back-office")
PROVIDER_ACTOR = Actor(key_id="dv-test", role="provider")


def _postgres_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL.split("?")[0], connect_timeout=3):
            return None
    except Exception as error:  # the reason is shown with the skip
        return str(error).splitlines()[0]


@pytest.fixture(scope="session")
def postgres_server() -> str:
    problem = _postgres_available()
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required in CI and unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    base = postgres_server.split("?")[0]
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    yield f"{base}?schema={schema}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request) -> str:
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def ledger(database_url: str) -> Iterator[KmoLedger]:
    app = KmoLedger(database_url)
    yield app
    app.close()


@pytest.fixture
def memory_ledger() -> Iterator[KmoLedger]:
    app = KmoLedger("memory://")
    yield app
    app.close()


ENTERPRISE = "0403170701"
OTHER_ENTERPRISE = "0202239951"
TRAINER = "DV.O207084"
ADVISER = "DV.A100001"


def sme(fte: int = 10, turnover: str = "1000000.00", balance_total: str = "500000.00", **extra) -> dict:
    return {"fte": fte, "turnover": turnover, "balance_total": balance_total, **extra}


def training(starts_on: date, fee: str = "10000.00", **extra) -> dict:
    fields = {
        "service": "training",
        "provider": TRAINER,
        "themes": ["digitalisation"],
        "enrolled_on": (starts_on - timedelta(days=20)).isoformat(),
        "starts_on": starts_on.isoformat(),
        "cost_lines": [{"kind": "fee", "amount": fee}],
    }
    fields.update(extra)
    return fields
