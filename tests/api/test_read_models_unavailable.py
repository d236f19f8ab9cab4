"""A read model that cannot apply an event is never wedged silently: the reads
that need it answer 503 with a stable code naming where it is stuck, and every
read of one wallet keeps working."""

from __future__ import annotations

from datetime import UTC, date, datetime

from freezegun import freeze_time

from ledger.domain import events as ev
from ledger.domain.identifiers import wallet_id
from tests.api.conftest import Api
from tests.conftest import ENTERPRISE, OTHER_ENTERPRISE


def confirm_an_unknown_application(ledger, enterprise: str) -> None:
    """Store a sealed event of an application the read models never saw
    (written past every rule): the read models cannot apply it."""
    last = list(ledger.events.get(wallet_id(enterprise)))[-1]
    unknown = ev.ApplicationConfirmed(
        originator_id=last.originator_id,
        originator_version=last.originator_version + 1,
        timestamp=datetime(2026, 3, 3, 9, tzinfo=UTC),
        business_date=date(2026, 3, 3),
        actor=ev.SYSTEM,
        previous_hash=last.hash,
        application_id="never-submitted",
    ).sealed()
    ledger.recorder.insert_events([ledger.mapper.to_stored_event(unknown)])


def test_reads_across_wallets_answer_503_when_an_event_cannot_be_folded_and_wallet_reads_still_work(
    api_on_every_store: Api,
):
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet(ENTERPRISE)
        api.open_wallet(OTHER_ENTERPRISE)
        assert api.get("/deadlines").status_code == 200  # the read models are up to date
    ledger = api.client.app.state.ledger
    confirm_an_unknown_application(ledger, OTHER_ENTERPRISE)
    high = ledger.recorder.max_notification_id()

    for path in ("/deadlines", "/payout-orders", "/reconciliation/totals", f"/wallets/{ENTERPRISE}/audit-trail"):
        answer = api.get(path)
        assert answer.status_code == 503, (path, answer.text)
        problem = answer.json()
        assert problem["code"] == "read_models_unavailable"
        assert f"stuck after notification {high - 1} of {high}" in problem["detail"]
        assert f"cannot apply notification {high} (ApplicationConfirmed)" in problem["detail"]
    assert api.get(f"/wallets/{ENTERPRISE}").status_code == 200
    assert api.get(f"/wallets/{ENTERPRISE}/events", as_="auditor").status_code == 200


def test_readiness_names_the_notification_the_read_models_are_stuck_at(api_on_every_store: Api):
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet(ENTERPRISE)
    ready = api.client.get("/readyz")  # no key: a load balancer asks
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True and ready.json()["read_models"]["position"] == 1

    confirm_an_unknown_application(api.client.app.state.ledger, ENTERPRISE)

    answer = api.client.get("/readyz")
    assert answer.status_code == 503
    report = answer.json()
    assert report["ready"] is False and report["store"] == {"ok": True, "notifications": 2}
    models = report["read_models"]
    assert (models["ok"], models["position"], models["stuck_at"], models["event_type"]) == (
        False,
        1,
        2,
        "ApplicationConfirmed",
    )
    assert models["reason"].split(":")[0].isidentifier()  # the error's type, then its message
