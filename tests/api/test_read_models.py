"""The cross-wallet reads answer from the read models: caught up before each
read (a client reads its own writes), kept across restarts, on every store."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

from freezegun import freeze_time

from api.reads import ReadModels
from ledger.application import KmoLedger
from projections import schema
from projections.store import connect
from tests.api.conftest import Api, running
from tests.conftest import ENTERPRISE, TRAINER
from tests.scenarios.helpers import Story


def test_a_submitted_application_is_at_once_in_the_deadlines_and_the_providers_inbox(api_on_every_store: Api):
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        before = api.get("/deadlines", within_days=30).json()["applications"]
        application = api.submit(date(2026, 3, 16))
        deadlines = api.get("/deadlines", within_days=30).json()["applications"]
        inbox = api.get(f"/providers/{TRAINER}/inbox", as_="provider").json()["applications"]
    assert before == []
    assert [(d["application_id"], d["rule"], d["deadline"]) for d in deadlines] == [
        (application["application_id"], "provider_answer", "2026-03-16")
    ]
    assert [(a["application_id"], a["project_amount"], a["answer_by"]) for a in inbox] == [
        (application["application_id"], "10000.00", "2026-03-16")
    ]


def test_a_confirmation_takes_the_application_out_of_the_unanswered_at_once(api_on_every_store: Api):
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        api.get(f"/providers/{TRAINER}/inbox")
        api.act(application, "confirmation", as_="provider")
        inbox = api.get(f"/providers/{TRAINER}/inbox", state="submitted").json()["applications"]
        deadlines = api.get("/deadlines", within_days=60).json()["applications"]
    assert inbox == []
    assert [(d["rule"], d["state"]) for d in deadlines] == [("own_share_deposit", "confirmed")]


def test_a_payout_order_is_listed_at_once_and_gone_once_executed(api_on_every_store: Api):
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        api.fund(application, date(2026, 3, 2))
        order_id = api.act(application, "payout-orders", {"amount": "1000.00"}).json()["order_id"]
        waiting = api.get("/payout-orders", as_="reconciler").json()
        api.act(application, "payouts", {"order_id": order_id, "value_date": "2026-03-02"})
        after = api.get("/payout-orders", as_="reconciler").json()
    assert waiting == {
        "today": "2026-03-02",
        "overdue_only": False,
        "orders": [
            {
                "enterprise_number": ENTERPRISE,
                "application_id": application["application_id"],
                "project_number": application["project_number"],
                "provider": TRAINER,
                "order_id": order_id,
                "amount": "1000.00",
                "ordered_on": "2026-03-02",
                "due_by": "2026-03-16",
                "age_days": 0,
                "overdue": False,
            },
        ],
    }
    assert after["orders"] == []


def test_a_deposit_shows_at_once_in_the_audit_trail_and_the_totals(api_on_every_store: Api):
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        api.act(application, "confirmation", as_="provider")
        api.get(f"/wallets/{ENTERPRISE}/audit-trail", as_="auditor")
        api.get("/reconciliation/totals", as_="reconciler")
        api.act(application, "deposits", api.deposit_of(application, "2026-03-02"))
        trail = api.get(f"/wallets/{ENTERPRISE}/audit-trail", as_="auditor").json()["rows"]
        totals = api.get("/reconciliation/totals", as_="reconciler").json()
    assert [row["type"] for row in trail][-1] == "OwnShareDeposited"
    assert trail[-1]["recorded_at"] == "2026-03-02T09:00:00+00:00"
    assert totals == {
        "from": None,
        "to": None,
        "rows": [
            {"date": "2026-03-02", "account_kind": "enterprise", "in": "0.00", "out": "7000.00", "net": "-7000.00"},
            {"date": "2026-03-02", "account_kind": "held", "in": "7000.00", "out": "0.00", "net": "7000.00"},
        ],
    }


def test_the_audit_trail_of_no_wallet_is_a_404(api: Api):
    response = api.get(f"/wallets/{ENTERPRISE}/audit-trail", as_="auditor")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_after_a_restart_the_reads_go_on_from_the_views_left_behind(database_url: str, keys_file: Path):
    with freeze_time("2026-03-02 09:00:00"):
        with running(database_url, keys_file) as api:
            api.open_wallet()
            application = api.submit(date(2026, 3, 16))
            first = api.get("/deadlines", within_days=30).json()
            reached = api.client.app.state.read_models.projector.committed_position()
        with running(database_url, keys_file) as api:
            models = api.client.app.state.read_models
            kept = models.projector.committed_position()
            again = api.get("/deadlines", within_days=30).json()
            api.act(application, "confirmation", as_="provider")
            inbox = api.get(f"/providers/{TRAINER}/inbox", state="submitted").json()["applications"]
            position = models.projector.committed_position()
            recorded = api.client.app.state.ledger.recorder.max_notification_id()
    assert kept == reached > 0  # the views were kept, not folded again
    assert again == first and inbox == []
    assert position == recorded


def test_views_left_by_an_older_version_are_rebuilt_on_the_first_read(database_url: str, keys_file: Path):
    with freeze_time("2026-03-02 09:00:00"):
        with running(database_url, keys_file) as api:
            api.open_wallet()
            api.submit(date(2026, 3, 16))
            first = api.get("/deadlines", within_days=30).json()
        target = connect(database_url)
        target.execute(f"UPDATE {schema.TRACKING.name} SET schema_version = ?", (schema.SCHEMA_VERSION - 1,))
        target.close()
        with running(database_url, keys_file) as api:
            again = api.get("/deadlines", within_days=30).json()
    target = connect(database_url)
    try:
        assert target.query(f"SELECT schema_version FROM {schema.TRACKING.name}") == [(schema.SCHEMA_VERSION,)]
    finally:
        target.close()
    assert again == first


def test_a_catch_up_that_fails_is_a_503_problem_without_a_trace(api: Api):
    models = api.client.app.state.read_models

    def fail(_position: int) -> None:
        raise RuntimeError("views disk on fire at /srv/secret/path")

    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        models.projector.before_commit = fail
        failed = api.get("/deadlines", as_="auditor")
        models.projector.before_commit = None
        answered = api.get("/deadlines", as_="auditor")
    assert (failed.status_code, failed.headers["content-type"]) == (503, "application/problem+json")
    assert failed.json()["code"] == "read_models_unavailable"
    assert "fire" not in failed.text and "Traceback" not in failed.text
    assert answered.status_code == 200


def test_the_reads_answer_on_the_in_memory_store(keys_file: Path):
    with freeze_time("2026-03-02 09:00:00"), running("memory://", keys_file) as api:
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        inbox = api.get(f"/providers/{TRAINER}/inbox").json()["applications"]
        trail = api.get(f"/wallets/{ENTERPRISE}/audit-trail", as_="auditor").json()["rows"]
    assert [a["application_id"] for a in inbox] == [application["application_id"]]
    assert [row["type"] for row in trail] == ["WalletOpened", "ApplicationSubmitted"]


def test_readers_in_many_threads_each_see_every_command_recorded_before_their_read(ledger: KmoLedger):
    """Reads race the commands and each other: each sees at least what was
    recorded before it began, none fails, and the last sees everything."""
    models = ReadModels(ledger)
    submitted, errors, done = [0], [], threading.Event()

    def submit_all(story: Story) -> None:
        try:
            for _ in range(12):
                story.submit(date(2026, 3, 20), fee="500.00")
                submitted[0] += 1
        except Exception as error:  # reported by the test below
            errors.append(error)
        finally:
            done.set()

    def read_until_done() -> None:
        try:
            while not done.is_set():
                before = submitted[0]
                inbox = models.read(lambda views: views.provider_inbox(TRAINER, date(2026, 3, 2)))
                if len(inbox["applications"]) < before:
                    errors.append(AssertionError(f"read {len(inbox['applications'])} of {before} recorded"))
        except Exception as error:
            errors.append(error)

    try:
        with freeze_time("2026-03-02 09:00:00"):
            story = Story(ledger)
            threads = [threading.Thread(target=submit_all, args=(story,))]
            threads += [threading.Thread(target=read_until_done) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        last = models.read(lambda views: views.provider_inbox(TRAINER, date(2026, 3, 2)))
    finally:
        models.close()
    assert errors == []
    assert len(last["applications"]) == 12
