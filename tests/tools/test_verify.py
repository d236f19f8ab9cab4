"""``kmo-ledger verify``: a changed, missing or reordered stored event is named
by wallet and sequence, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date

import orjson
import pytest
from freezegun import freeze_time

from ledger.domain.commands import FileSmeFigures
from ledger.domain.events import chain_hash
from ledger.domain.identifiers import wallet_id
from scripts import export, verify
from tests.conftest import BACK_OFFICE, ENTERPRISE, OTHER_ENTERPRISE
from tests.scenarios.helpers import Story
from tests.tools.helpers import StoredEvents, Tools

WALLET = wallet_id(ENTERPRISE)
OTHER_WALLET = wallet_id(OTHER_ENTERPRISE)


@pytest.fixture
def tools(monkeypatch, capsys, database_url):
    return Tools(monkeypatch, capsys, database_url)


@pytest.fixture
def two_wallets(ledger):
    """Events 1..7 of the first wallet: opened, submitted, confirmed, deposited
    (4), topped up (5), payout ordered (6) and executed (7); a second wallet beside it."""
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 16))
        other = Story(ledger, OTHER_ENTERPRISE)
        other.submit(date(2026, 3, 16))
    with freeze_time("2026-03-05 10:00:00"):
        story.fund(application_id, date(2026, 3, 5))
    with freeze_time("2026-04-01 10:00:00"):
        story.pay(application_id, "4000.00", date(2026, 4, 1))
    return story


def findings(tools: Tools, *args: str) -> tuple[int, dict]:
    outcome = tools.run(verify.main, *args, "--json")
    return outcome.code, json.loads(outcome.out)


def named(report: dict) -> set[tuple[str, int | None]]:
    return {(p["enterprise_number"], p["sequence"]) for p in report["problems"]}


def test_an_untouched_ledger_verifies(tools, two_wallets):
    code, report = findings(tools)
    assert code == 0 and report["ok"] and report["problems"] == []
    assert (report["wallets"], report["events"]) == (2, 9)
    human = tools.run(verify.main)
    assert human.code == 0 and "Verified 2 wallet(s), 9 event(s)" in human.out and "OK" in human.out


def test_a_changed_amount_in_a_stored_event_is_named(tools, two_wallets):
    stored = StoredEvents(tools.database_url)
    state = stored.state(WALLET, 4)
    assert b'"amount":"7000.00"' in state
    stored.update(WALLET, 4, state.replace(b'"amount":"7000.00"', b'"amount":"7100.00"'))
    code, report = findings(tools)
    assert code == 1 and not report["ok"]
    assert (ENTERPRISE, 4) in named(report)
    assert any("event 4 (OwnShareDeposited) was changed" in p["problem"] for p in report["problems"])
    assert {p["enterprise_number"] for p in report["problems"]} == {ENTERPRISE}
    human = tools.run(verify.main)
    assert human.code == 1 and ENTERPRISE in human.out and "FAILED" in human.out


def test_a_deleted_stored_event_is_named(tools, two_wallets):
    StoredEvents(tools.database_url).delete(WALLET, 5)
    code, report = findings(tools)
    assert code == 1
    assert any(p["sequence"] == 5 and "missing" in p["problem"] for p in report["problems"])
    assert {p["enterprise_number"] for p in report["problems"]} == {ENTERPRISE}


def test_a_deleted_submission_is_found_through_the_reference_it_claimed(tools, two_wallets):
    StoredEvents(tools.database_url).delete(OTHER_WALLET, 2)  # the other wallet's last event
    code, report = findings(tools)
    assert code == 1
    assert any(
        p["enterprise_number"] == OTHER_ENTERPRISE and "ApplicationSubmitted event is missing" in p["problem"]
        for p in report["problems"]
    )


def test_reordered_stored_events_are_named(tools, two_wallets):
    stored = StoredEvents(tools.database_url)
    third, fourth = stored.state(WALLET, 3), stored.state(WALLET, 4)
    stored.update(WALLET, 3, fourth)
    stored.update(WALLET, 4, third)
    code, report = findings(tools)
    assert code == 1 and {(ENTERPRISE, 3), (ENTERPRISE, 4)} <= named(report)


def test_a_deleted_opening_event_is_still_found(tools, two_wallets):
    StoredEvents(tools.database_url).delete(WALLET, 1)
    code, report = findings(tools)
    assert code == 1 and (ENTERPRISE, 1) in named(report)


def test_one_wallet_only(tools, two_wallets):
    StoredEvents(tools.database_url).delete(WALLET, 5)
    code, report = findings(tools, "BE 0202.239.951")
    assert code == 0 and report["wallets"] == 1 and report["projections"]["checked"] is False
    code, report = findings(tools, ENTERPRISE)
    assert code == 1 and (ENTERPRISE, 5) in named(report)


def test_an_unknown_wallet_is_bad_input(tools, two_wallets):
    outcome = tools.run(verify.main, "0417497106")
    assert outcome.code == 2 and "no wallet" in outcome.err


def test_a_tail_deleted_after_an_export_is_found_against_the_archive(tools, two_wallets, tmp_path):
    assert tools.run(export.main, "--out", str(tmp_path / "archive")).code == 0
    StoredEvents(tools.database_url).delete(WALLET, 7)  # the last event: the chain itself still holds
    code, report = findings(tools, "--against", str(tmp_path / "archive"))
    assert code == 1
    assert any(p["sequence"] == 7 and "sealed it as a chain head" in p["problem"] for p in report["problems"])


def test_a_rewritten_history_with_recomputed_hashes_differs_from_its_snapshot(tools, ledger):
    """The chain alone cannot catch a forger who recomputes every hash; the
    snapshot taken every 100 events can."""
    figures = FileSmeFigures(year=2025, sme={"fte": 10, "turnover": "1000000.00", "balance_total": "500000.00"})
    with freeze_time("2026-03-02 09:00:00"):
        Story(ledger)
        for _ in range(100):
            ledger.file_sme_figures(ENTERPRISE, figures, BACK_OFFICE)
    stored = StoredEvents(tools.database_url)
    previous = orjson.loads(stored.state(WALLET, 1))["hash"]
    for version in range(2, 102):
        state = orjson.loads(stored.state(WALLET, version))
        if version == 2:
            state["figures"]["turnover"] = "9000000.00"
        state["previous_hash"] = previous
        content = {k: v for k, v in state.items() if k != "hash"}
        content.update(originator_id=str(WALLET), originator_version=version, type="SmeFiguresFiled")
        state["hash"] = previous = chain_hash(content)
        stored.update(WALLET, version, orjson.dumps(state))
    code, report = findings(tools)
    assert code == 1
    assert [p["sequence"] for p in report["problems"]] == [100]
    assert "differs from the snapshot" in report["problems"][0]["problem"]


def test_a_read_model_that_drifted_from_the_events_is_reported(tools, two_wallets, ledger):
    runner = pytest.importorskip("projections.runner")
    with runner.Projector(ledger) as projector:
        projector.catch_up()
    code, report = findings(tools)
    assert code == 0 and report["projections"]["checked"] is True
    if tools.database_url.startswith("sqlite"):
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(tools.database_url[len("sqlite:///") :])) as db, db:
            db.execute("UPDATE wallet_balances SET held_own_share = held_own_share + 1")
    else:
        import psycopg

        schema = tools.database_url.split("schema=")[1]
        with psycopg.connect(tools.database_url.split("?")[0], autocommit=True) as db:
            db.execute(f"UPDATE {schema}.wallet_balances SET held_own_share = held_own_share + 1")
    code, report = findings(tools)
    assert code == 1 and report["projections"]["differences"]
    assert all(p["problem"].startswith("projections: ") for p in report["problems"])
