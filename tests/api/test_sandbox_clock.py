"""The sandbox clock (``KMO_LEDGER_SANDBOX=true``): back-office moves the server's
clock forward, runs the deadlines and watches an application lapse, without
faking the machine's clock. The clock lives in the store: every server process
shows it, and a restart keeps it. Without sandbox mode the route does not
exist, and a store is never opened in the other mode than it was marked in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from freezegun import freeze_time

from api import create_app
from api.settings import Settings
from ledger.application import KmoLedger
from ledger.build import LedgerSettings, build_ledger
from ledger.storage.sandbox import StoreModeMismatch
from scripts import replay, serve
from scripts.local_server import Server
from tests.api.conftest import KEYS, Api, running, write_keys
from tests.conftest import ENTERPRISE, sme, training
from tests.scenarios.helpers import Story

REPOSITORY = str(Path(__file__).resolve().parents[2])
SANDBOX_VARIABLE = "KMO_LEDGER_SANDBOX"


def as_(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


@pytest.fixture
def sandbox_server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    """``kmo-ledger serve --workers 2`` in sandbox mode, on SQLite and PostgreSQL."""
    env = {
        **os.environ,
        "KMO_LEDGER_DATABASE_URL": database_url,
        "KMO_LEDGER_API_KEYS_FILE": str(write_keys(tmp_path / "keys.json")),
        SANDBOX_VARIABLE: "true",
    }
    server = Server(env, REPOSITORY, workers=2)
    server.start()
    yield server
    server.stop()


def test_the_sandbox_clock_lapses_an_application_over_http(sandbox_server: Server):
    with httpx.Client(base_url=sandbox_server.url + "/v1", timeout=30) as client:
        today = date.fromisoformat(client.get("/sandbox/clock", headers=as_("back-office")).json()["today"])
        opened = client.post(
            "/wallets",
            json={"enterprise_number": ENTERPRISE, "name": "Bakkerij Peeters", "sme": sme()},
            headers=as_("back-office"),
        )
        assert opened.status_code == 201, opened.text
        submitted = client.post(
            f"/wallets/{ENTERPRISE}/applications", json=training(today + timedelta(days=10)), headers=as_("back-office")
        )
        assert submitted.status_code == 201, submitted.text
        application = submitted.json()
        answer_by = application["deadlines"]["answer_by"]
        assert answer_by == (today + timedelta(days=14)).isoformat()

        nothing_yet = client.post("/deadlines/run", headers=as_("back-office"))
        assert nothing_yet.status_code == 200 and nothing_yet.json() == {"lapsed": []}

        later = datetime.now(UTC) + timedelta(days=15)
        moved = client.post(
            "/sandbox/clock",
            json={"now": later.isoformat()},
            headers=as_("back-office") | {"Idempotency-Key": "move-1"},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["today"] == (today + timedelta(days=15)).isoformat()

        # both server processes show the moved clock: each read on a connection of
        # its own, which either process may accept
        shown = {
            httpx.get(f"{sandbox_server.url}/v1/sandbox/clock", headers=as_("auditor"), timeout=30).json()["today"]
            for _ in range(20)
        }
        assert shown == {(today + timedelta(days=15)).isoformat()}

        run = client.post("/deadlines/run", headers=as_("back-office"))
        assert run.status_code == 200
        assert run.json() == {
            "lapsed": [
                {
                    "enterprise_number": ENTERPRISE,
                    "application_id": application["application_id"],
                    "rule": "provider_answer",
                    "deadline": answer_by,
                }
            ]
        }
        path = f"/wallets/{ENTERPRISE}/applications/{application['application_id']}"
        assert client.get(path, headers=as_("back-office")).json()["state"] == "lapsed"
        events = client.get(f"/wallets/{ENTERPRISE}/events", headers=as_("auditor")).json()["events"]
        assert events[-1]["type"] == "ApplicationLapsed"
        assert events[-1]["business_date"] == (date.fromisoformat(answer_by) + timedelta(days=1)).isoformat()

    sandbox_server.stop()
    sandbox_server.start()
    restarted = httpx.get(f"{sandbox_server.url}/v1/sandbox/clock", headers=as_("back-office"), timeout=30)
    assert restarted.json()["today"] == (today + timedelta(days=15)).isoformat()


@pytest.fixture
def sandbox_api(tmp_path: Path, keys_file: Path) -> Iterator[Api]:
    """The API in sandbox mode, on a SQLite file of its own."""
    url = f"sqlite:///{tmp_path / 'sandbox.db'}"
    app = create_app(Settings(database_url=url, api_keys_file=keys_file, sandbox=True))
    with TestClient(app) as client:
        yield Api(client)


def test_the_clock_moves_forward_only_and_a_refusal_changes_nothing(sandbox_api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        assert sandbox_api.get("/sandbox/clock").json() == {"now": "2026-03-02T09:00:00Z", "today": "2026-03-02"}
        moved = sandbox_api.post("/sandbox/clock", {"now": "2026-03-20T09:00:00+01:00"})
        assert moved.status_code == 200 and moved.json() == {"now": "2026-03-20T08:00:00Z", "today": "2026-03-20"}
        for refused in (
            {"now": "2026-03-19T09:00:00+01:00"},  # backwards
            {"now": "2026-03-25T09:00:00"},  # no UTC offset
            {"now": "next tuesday"},
            {"now": "2100-01-01T00:00:00+01:00"},  # past the dates the ledger knows
            {"now": "2026-03-25T09:00:00+01:00", "extra": 1},
            {},
        ):
            answer = sandbox_api.post("/sandbox/clock", refused)
            assert answer.status_code == 422, refused
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == "validation_error"
        assert (
            "moves forward only" in sandbox_api.post("/sandbox/clock", {"now": "2026-03-01T00:00:00Z"}).json()["detail"]
        )
        assert sandbox_api.get("/sandbox/clock").json() == {"now": "2026-03-20T08:00:00Z", "today": "2026-03-20"}


def test_the_clock_dates_what_the_ledger_records(sandbox_api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        sandbox_api.open_wallet()
        sandbox_api.post("/sandbox/clock", {"now": "2026-03-05T10:00:00+01:00"})
        application = sandbox_api.submit(date(2026, 3, 16))
        events = sandbox_api.get(f"/wallets/{ENTERPRISE}/events").json()["events"]
    assert application["deadlines"]["answer_by"] == "2026-03-19"
    assert [(e["type"], e["business_date"]) for e in events] == [
        ("WalletOpened", "2026-03-02"),
        ("ApplicationSubmitted", "2026-03-05"),
    ]


@pytest.mark.parametrize("role", ["auditor", "reconciler", "provider"])
def test_only_back_office_moves_the_clock(sandbox_api: Api, role: str):
    with freeze_time("2026-03-02 09:00:00"):
        answer = sandbox_api.post("/sandbox/clock", {"now": "2026-03-20T09:00:00+01:00"}, as_=role)
        assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
        assert sandbox_api.get("/sandbox/clock", as_=role).json()["today"] == "2026-03-02"


def test_the_route_exists_in_sandbox_mode_only(api: Api, sandbox_api: Api):
    moved = api.post("/sandbox/clock", {"now": "2030-01-01T00:00:00+01:00"})
    assert moved.status_code == 404 and moved.json()["code"] == "not_found"
    assert api.get("/sandbox/clock").status_code == 404
    assert not [path for path in api.client.get("/openapi.json").json()["paths"] if "sandbox" in path]

    document = sandbox_api.client.get("/openapi.json").json()
    operation = document["paths"]["/v1/sandbox/clock"]["post"]
    assert operation["operationId"] == "move_sandbox_clock" and "Forward only" in operation["description"]
    assert {"403", "422"} <= set(operation["responses"])
    assert sandbox_api.get("/sandbox/clock").status_code == 200


# ---------------------------------------------------------------------- a store in one mode only


@pytest.fixture
def no_uvicorn(monkeypatch) -> list:
    """``serve`` stops before uvicorn when it refuses the store; if it did not, this
    records the start instead of serving forever."""
    started: list = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(args))
    return started


@pytest.fixture
def configured(database_url: str, keys_file: Path, monkeypatch) -> str:
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("KMO_LEDGER_API_KEYS_FILE", str(keys_file))
    return database_url


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_a_sandbox_store_is_refused_outside_sandbox_mode(configured, monkeypatch, capsys, no_uvicorn):
    build_ledger(LedgerSettings(database_url=configured, sandbox=True)).close()
    monkeypatch.delenv(SANDBOX_VARIABLE, raising=False)
    capsys.readouterr()
    assert serve.main([]) == 2 and no_uvicorn == []
    assert "is a sandbox" in one_line(capsys.readouterr().err)
    assert replay.main([ENTERPRISE]) == 2
    assert one_line(capsys.readouterr().err).startswith("kmo-ledger replay: the ledger at ")
    with pytest.raises(StoreModeMismatch):
        build_ledger(LedgerSettings(database_url=configured))


def test_a_production_store_is_refused_in_sandbox_mode(configured, monkeypatch, capsys, no_uvicorn):
    build_ledger(LedgerSettings(database_url=configured)).close()
    monkeypatch.setenv(SANDBOX_VARIABLE, "true")
    capsys.readouterr()
    assert serve.main([]) == 2 and no_uvicorn == []
    assert "is not a sandbox" in one_line(capsys.readouterr().err)
    assert replay.main([ENTERPRISE]) == 2
    assert "is not a sandbox" in one_line(capsys.readouterr().err)


def test_a_ledger_recorded_before_stores_were_marked_is_production(configured, monkeypatch):
    ledger = KmoLedger(configured)  # as an earlier version left it: events, no mark
    try:
        Story(ledger)
    finally:
        ledger.close()
    with pytest.raises(StoreModeMismatch):
        build_ledger(LedgerSettings(database_url=configured, sandbox=True))
    build_ledger(LedgerSettings(database_url=configured)).close()


def test_a_sandbox_store_is_served_in_sandbox_mode(configured, monkeypatch, capsys, no_uvicorn):
    build_ledger(LedgerSettings(database_url=configured, sandbox=True)).close()
    monkeypatch.setenv(SANDBOX_VARIABLE, "true")
    assert serve.main([]) == 0 and len(no_uvicorn) == 1
    assert "POST /v1/sandbox/clock" in capsys.readouterr().out


def test_a_sandbox_setting_that_is_not_a_yes_or_no_is_refused_in_one_line(configured, monkeypatch, capsys):
    monkeypatch.setenv(SANDBOX_VARIABLE, "perhaps")
    capsys.readouterr()
    assert replay.main([ENTERPRISE]) == 2
    assert one_line(capsys.readouterr().err).startswith("kmo-ledger replay: KMO_LEDGER_SANDBOX: ")


def test_the_app_refuses_a_store_of_the_other_mode(configured, keys_file):
    build_ledger(LedgerSettings(database_url=configured, sandbox=True)).close()
    with pytest.raises(StoreModeMismatch), running(configured, keys_file):
        pass
