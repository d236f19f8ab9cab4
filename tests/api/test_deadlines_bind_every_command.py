"""The two cases that moved money after a deadline, replayed over HTTP on every
store: each command now honours every deadline of its application, and what an
auditor replays on any date holds."""

from __future__ import annotations

from datetime import date

from freezegun import freeze_time

from tests.api.conftest import Api
from tests.conftest import ENTERPRISE


def test_an_own_share_posted_after_the_providers_silence_is_refused_and_the_lapse_replays_clean(
    api_on_every_store: Api,
):
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
    version = api.get(f"/wallets/{ENTERPRISE}").json()["version"]
    with freeze_time("2026-03-19 09:00:00"):  # day 17: the provider never answered (due by day 14)
        deposit = api.act(application, "deposits", api.deposit_of(application, "2026-03-19"))
        assert deposit.status_code == 422 and deposit.json()["code"] == "deadline_passed", deposit.text
        assert api.get(f"/wallets/{ENTERPRISE}").json()["version"] == version  # nothing recorded
        lapsed = api.post("/deadlines/run").json()["lapsed"]
    assert [(r["rule"], r["deadline"]) for r in lapsed] == [("provider_answer", "2026-03-16")]
    for as_of in ("2026-03-16", "2026-03-17", "2026-03-19"):
        replayed = api.get(f"/wallets/{ENTERPRISE}/state", as_="auditor", as_of=as_of).json()
        assert replayed["held"] == {"own_share": "0.00", "subsidy": "0.00"}, as_of
    assert api.get(f"/wallets/{ENTERPRISE}/verification", as_="auditor").json() == {"ok": True, "problems": []}


def test_no_payout_is_ordered_after_the_completion_deadline_and_the_closure_returns_the_rest(
    api_on_every_store: Api,
):
    api = api_on_every_store
    with freeze_time("2025-03-03 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2025, 3, 17))  # complete by 2026-12-31
        api.fund(application, date(2025, 3, 3))
    with freeze_time("2026-12-31 09:00:00"):  # the last day: an order is still accepted
        in_time = api.act(application, "payout-orders", {"amount": "4000.00"})
        assert in_time.status_code == 201, in_time.text
    with freeze_time("2027-01-05 09:00:00"):
        late = api.act(application, "payout-orders", {"amount": "1000.00"})
        assert late.status_code == 422 and late.json()["code"] == "deadline_passed", late.text
        paid = api.act(application, "payouts", {"order_id": in_time.json()["order_id"], "value_date": "2027-01-05"})
        assert paid.status_code == 200, paid.text  # ordered in time: executed after the deadline
        closed = api.post("/deadlines/run").json()["lapsed"]
    assert [(r["rule"], r["deadline"]) for r in closed] == [("completion", "2026-12-31")]
    view = api.get(f"/wallets/{ENTERPRISE}/applications/{application['application_id']}").json()
    assert view["state"] == "closed"
    assert view["paid_out"]["total"] == "4000.00"
    assert view["held"] == {"own_share": "0.00", "subsidy": "0.00"}
    assert view["due"] == {"enterprise": "4200.00", "government": "1800.00"}
    # the closure fell in 2027: the unspent 1,800.00 is lost to 2025, neither reserved nor freed
    ceiling = next(c for c in api.get(f"/wallets/{ENTERPRISE}").json()["ceilings"] if c["year"] == 2025)
    assert (ceiling["reserved"], ceiling["used"], ceiling["lost"], ceiling["freed"]) == (
        "0.00",
        "1200.00",
        "1800.00",
        "0.00",
    )
    assert api.get(f"/wallets/{ENTERPRISE}/verification", as_="auditor").json() == {"ok": True, "problems": []}


def test_a_closure_keeps_what_a_payout_ordered_in_time_draws_on(api: Api):
    with freeze_time("2025-03-03 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2025, 3, 17))
        api.fund(application, date(2025, 3, 3))
    with freeze_time("2026-12-31 09:00:00"):
        order_id = api.act(application, "payout-orders", {"amount": "4000.00"}).json()["order_id"]
    with freeze_time("2027-01-02 09:00:00"):
        assert len(api.post("/deadlines/run").json()["lapsed"]) == 1
        closed = api.get(f"/wallets/{ENTERPRISE}/applications/{application['application_id']}").json()
        assert closed["state"] == "closed"
        assert closed["held"] == {"own_share": "2800.00", "subsidy": "1200.00"}
        assert closed["due"] == {"enterprise": "4200.00", "government": "1800.00"}
        paid = api.act(application, "payouts", {"order_id": order_id, "value_date": "2027-01-02"})
        assert paid.status_code == 200, paid.text
    assert paid.json()["held"] == {"own_share": "0.00", "subsidy": "0.00"}
    assert paid.json()["paid_out"]["total"] == "4000.00"
    assert api.get(f"/wallets/{ENTERPRISE}/verification", as_="auditor").json() == {"ok": True, "problems": []}
