"""Idempotency-Key: a retry gets the first answer and records nothing new."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from freezegun import freeze_time

from ledger.storage.records import idempotency_id
from tests.api.conftest import Api, key_id_of, running
from tests.conftest import ENTERPRISE
from tests.scenarios.test_trusted_state import StoredRows


def funded_and_ordered(api: Api) -> tuple[dict, Any]:
    """A funded application of a new wallet and the answer to its payout order under key order-1."""
    api.open_wallet()
    application = api.submit(date(2026, 3, 16))
    api.fund(application, date(2026, 3, 2))
    return application, api.act(application, "payout-orders", {"amount": "1000.00"}, Idempotency_Key="order-1")


def test_a_retry_returns_the_first_answer_and_records_nothing_new(api_on_every_store: Api):
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        application, first = funded_and_ordered(api)
        retry = api.act(application, "payout-orders", {"amount": 1000}, Idempotency_Key="order-1")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert api.events().count("PayoutOrdered") == 1


def test_the_same_key_with_another_body_is_a_422(api_on_every_store: Api):
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        api.fund(application, date(2026, 3, 2))
        api.act(application, "payout-orders", {"amount": "1000.00"}, Idempotency_Key="order-1")
        reused = api.act(application, "payout-orders", {"amount": "2000.00"}, Idempotency_Key="order-1")
        elsewhere = api.act(application, "stop", {"reason": "on_request"}, Idempotency_Key="order-1")
    assert reused.status_code == elsewhere.status_code == 422
    assert reused.json()["code"] == elsewhere.json()["code"] == "idempotency_key_reused"
    assert reused.headers["content-type"] == "application/problem+json"
    assert api.events().count("PayoutOrdered") == 1 and "ProjectStopped" not in api.events()


def test_keys_are_scoped_to_the_callers_key(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        by_provider = api.act(application, "confirmation", as_="provider", Idempotency_Key="k")
        figures = {"year": 2025, "sme": {"fte": 10, "turnover": "1000000.00", "balance_total": "500000.00"}}
        by_back_office = api.post(f"/wallets/{ENTERPRISE}/sme-figures", figures, Idempotency_Key="k")
    assert by_provider.status_code == 200 and "idempotent-replayed" not in by_back_office.headers
    assert by_back_office.status_code == 200 and by_back_office.json()["version"] == 4


def test_a_refusal_is_not_stored_so_a_retry_is_decided_again(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        api.act(application, "confirmation", as_="provider")
        deposit = api.deposit_of(application, "2026-03-02")
        early = api.act(application, "top-ups", {"amount": "3000.00", "value_date": "2026-03-02"}, Idempotency_Key="t")
        api.act(application, "deposits", deposit)
        later = api.act(application, "top-ups", {"amount": "3000.00", "value_date": "2026-03-02"}, Idempotency_Key="t")
    assert early.status_code == 422 and later.status_code == 200


def test_opening_a_wallet_twice_with_one_key_answers_201_twice(api: Api):
    body = {
        "enterprise_number": ENTERPRISE,
        "name": "Bakkerij Peeters",
        "sme": {"fte": 10, "turnover": "1000000.00", "balance_total": "500000.00"},
    }
    first = api.post("/wallets", body, Idempotency_Key="open-1")
    retry = api.post("/wallets", body, Idempotency_Key="open-1")
    without_key = api.post("/wallets", body)
    assert first.status_code == retry.status_code == 201 and retry.json() == first.json()
    assert without_key.status_code == 409


def test_a_retry_after_a_restart_is_still_answered(tmp_path: Path, keys_file: Path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with freeze_time("2026-03-02 09:00:00"):
        with running(url, keys_file) as api:
            api.open_wallet()
            application = api.submit(date(2026, 3, 16))
            first = api.act(application, "confirmation", as_="provider", Idempotency_Key="confirm-1")
        with running(url, keys_file) as restarted:
            retry = restarted.act(application, "confirmation", as_="provider", Idempotency_Key="confirm-1")
            events = restarted.events()
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    assert events.count("ApplicationConfirmed") == 1


def test_the_deadline_run_answers_a_retry_with_its_first_answer(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
    with freeze_time("2026-03-20 09:00:00"):
        first = api.post("/deadlines/run", Idempotency_Key="run-2026-03-20")
        retry = api.post("/deadlines/run", Idempotency_Key="run-2026-03-20")
        fresh = api.post("/deadlines/run", Idempotency_Key="run-again")
        reused = api.post("/deadlines/run", as_="back-office", Idempotency_Key="run-2026-03-20")
    assert [lapse["application_id"] for lapse in first.json()["lapsed"]] == [application["application_id"]]
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    assert fresh.json() == {"lapsed": []}
    assert reused.json() == first.json()
    assert api.events().count("ApplicationLapsed") == 1


def test_a_malformed_idempotency_key_is_a_422(api: Api):
    response = api.post("/deadlines/run", Idempotency_Key="x" * 201)
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


def unseal(content: dict) -> None:
    content.pop("digest")


def flip_amount(content: dict) -> None:
    """One bit of the stored answer flipped: "1000.00" ("1" is 0x31) becomes "9000.00" (0x39)."""
    stored = orjson.dumps(content)
    assert stored.count(b'"amount":"1000.00"') == 1
    content.clear()
    content.update(orjson.loads(stored.replace(b'"amount":"1000.00"', b'"amount":"9000.00"')))


@pytest.mark.parametrize("damage", [flip_amount, unseal], ids=["flipped-bit", "stored-before-digests"])
def test_a_stored_answer_that_fails_its_check_is_not_replayed_and_nothing_is_done(
    api_on_every_store: Api, database_url: str, damage
):
    """The first request may have taken effect, so running it again could pay twice, and
    its stored answer cannot be trusted: the retry is refused and the caller reads the state."""
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        application, first = funded_and_ordered(api)
        StoredRows(database_url, "events").edit(idempotency_id(key_id_of("back-office"), "order-1"), 1, damage)
        retry = api.act(application, "payout-orders", {"amount": "1000.00"}, Idempotency_Key="order-1")
    assert first.status_code == 201
    assert retry.status_code == 422 and "idempotent-replayed" not in retry.headers
    assert retry.json()["code"] == "record_unverifiable" and "nothing was done" in retry.json()["detail"]
    assert api.events().count("PayoutOrdered") == 1


def test_the_deadline_run_does_not_replay_a_changed_answer(api: Api, sqlite_url: str):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        api.submit(date(2026, 3, 16))
    with freeze_time("2026-03-20 09:00:00"):
        first = api.post("/deadlines/run", Idempotency_Key="run-1")
        record = idempotency_id(key_id_of("back-office"), "run-1")
        StoredRows(sqlite_url, "events").edit(record, 1, lambda answer: answer["body"].update(lapsed=[]))
        retry = api.post("/deadlines/run", Idempotency_Key="run-1")
    assert first.status_code == 200 and first.json()["lapsed"]
    assert retry.status_code == 422 and retry.json()["code"] == "record_unverifiable"
    assert api.events().count("ApplicationLapsed") == 1
