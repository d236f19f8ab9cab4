"""Applications through HTTP, from submission to their end, on every store."""

from __future__ import annotations

from datetime import date

import pytest
from freezegun import freeze_time

from tests.api.conftest import Api
from tests.conftest import ENTERPRISE, OTHER_ENTERPRISE, TRAINER, training


def test_a_training_is_submitted_funded_paid_out_and_completed(api_on_every_store: Api):
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        wallet = api.open_wallet("BE 0403.170.701")
        application = api.submit(date(2026, 3, 16))
    assert wallet["enterprise_number"] == ENTERPRISE and wallet["sizes"] == {"2026": "small"}
    assert wallet["version"] == 1
    assert {k: application[k] for k in ("state", "regime", "rate", "eligible_cost", "subsidy", "own_share")} == {
        "state": "submitted",
        "regime": "current",
        "rate": "30.00",
        "eligible_cost": "10000.00",
        "subsidy": "3000.00",
        "own_share": "7000.00",
    }
    assert application["deadlines"]["answer_by"] == "2026-03-16"
    assert application["payment_reference"].startswith("+++")

    with freeze_time("2026-03-05 10:00:00"):
        funded = api.fund(application, date(2026, 3, 5))
    assert funded["state"] == "funded"

    with freeze_time("2026-04-01 10:00:00"):
        ordered = api.act(application, "payout-orders", {"amount": 4000})
        assert ordered.status_code == 201, ordered.text
        order_id = ordered.json()["order_id"]
        assert ordered.json()["application"]["ordered_not_executed"] == "4000.00"
        paid = api.act(application, "payouts", {"order_id": order_id, "value_date": "2026-04-01"})
        assert paid.status_code == 200, paid.text
        assert paid.json()["state"] == "paying"
        assert paid.json()["paid_out"] == {"own_share": "2800.00", "subsidy": "1200.00", "total": "4000.00"}
        rest = api.act(application, "payout-orders", {"amount": "6000.00"}).json()["order_id"]
        last = api.act(application, "payouts", {"order_id": rest, "value_date": "2026-04-01"})
        assert last.json()["state"] == "paid_out"
    with freeze_time("2026-04-10 10:00:00"):
        completed = api.act(application, "completion", {"completed_on": "2026-04-09"})
    assert completed.status_code == 200 and completed.json()["state"] == "completed"

    assert api.events() == [
        "WalletOpened",
        "ApplicationSubmitted",
        "ApplicationConfirmed",
        "OwnShareDeposited",
        "SubsidyToppedUp",
        "PayoutOrdered",
        "PayoutExecuted",
        "PayoutOrdered",
        "PayoutExecuted",
        "ServiceCompleted",
    ]
    assert api.get(f"/wallets/{ENTERPRISE}/verification", as_="auditor").json() == {"ok": True, "problems": []}
    wallet = api.get("/wallets/BE 0403.170.701", as_="reconciler")
    assert wallet.headers["etag"] == '"10"' and wallet.json()["enterprise_number"] == ENTERPRISE
    assert wallet.json()["held"] == {"own_share": "0.00", "subsidy": "0.00"}


def test_events_are_the_audit_contract_and_cut_at_a_business_date(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
    with freeze_time("2026-03-05 10:00:00"):
        api.fund(application, date(2026, 3, 5))
    events = api.get(f"/wallets/{ENTERPRISE}/events", as_="auditor").json()["events"]
    cut = api.get(f"/wallets/{ENTERPRISE}/events", as_="auditor", as_of="2026-03-04").json()["events"]
    deposit = events[3]
    assert [e["sequence"] for e in events] == [1, 2, 3, 4, 5]
    assert deposit["type"] == "OwnShareDeposited" and deposit["business_date"] == "2026-03-05"
    assert deposit["recorded_at"] == "2026-03-05T10:00:00+00:00"
    assert deposit["data"]["amount"] == "7000.00" and deposit["data"]["value_date"] == "2026-03-05"
    assert deposit["data"]["legs"] == [
        {"account": "enterprise", "amount": "-7000.00"},
        {"account": "held_own_share", "amount": "7000.00"},
    ]
    assert deposit["previous_hash"] == events[2]["hash"]
    assert [e["type"] for e in cut] == ["WalletOpened", "ApplicationSubmitted"]


def test_the_state_as_of_a_date_is_the_wallet_replayed_then(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
    with freeze_time("2026-03-05 10:00:00"):
        api.fund(application, date(2026, 3, 5))
        today = api.get(f"/wallets/{ENTERPRISE}/state").json()
    before = api.get(f"/wallets/{ENTERPRISE}/state", as_="auditor", as_of="2026-03-02").json()
    too_early = api.get(f"/wallets/{ENTERPRISE}/state", as_="auditor", as_of="2026-03-01")
    assert before["as_of"] == "2026-03-02" and before["version"] == 2
    assert before["applications"][0]["state"] == "submitted" and before["held"]["own_share"] == "0.00"
    assert today["held"] == {"own_share": "7000.00", "subsidy": "3000.00"}
    assert too_early.status_code == 404


def test_responses_are_the_ledgers_own_views(api: Api):
    ledger = api.client.app.state.ledger
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        path = f"/wallets/{ENTERPRISE}/applications/{application['application_id']}"
        assert api.get(path).json() == ledger.application_summary(ENTERPRISE, application["application_id"])
        assert api.get(f"/wallets/{ENTERPRISE}").json() == ledger.wallet_summary(ENTERPRISE)
        assert application == ledger.application_summary(ENTERPRISE, application["application_id"])


def test_a_provider_refuses_and_the_ceiling_is_freed(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
    with freeze_time("2026-03-04 09:00:00"):
        refused = api.act(application, "refusal", {"reason": "related parties"}, as_="provider")
        inbox = api.get(f"/providers/{TRAINER}/inbox").json()["applications"]
        wallet = api.get(f"/wallets/{ENTERPRISE}").json()
    assert refused.status_code == 200 and refused.json()["state"] == "refused"
    assert refused.json()["end_reason"] == "related parties"
    assert inbox == [] and wallet["ceilings"][0]["remaining"] == "7500.00"


def test_a_stop_after_a_payout_issues_a_recovery_then_refunds(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
    with freeze_time("2026-03-05 10:00:00"):
        api.fund(application, date(2026, 3, 5))
        order_id = api.act(application, "payout-orders", {"amount": "4000.00"}).json()["order_id"]
        api.act(application, "payouts", {"order_id": order_id, "value_date": "2026-03-05"})
    with freeze_time("2026-04-01 10:00:00"):
        stopped = api.act(application, "stop", {"reason": "other"})
        early = api.act(application, "stop", {"reason": "other"})
        repaid = api.act(application, "repayments", {"amount": "1200.00", "value_date": "2026-04-01"})
        refund = {"kind": "own_share_to_enterprise", "amount": "4200.00", "value_date": "2026-04-01"}
        refunded = api.act(application, "refunds", refund)
    assert stopped.status_code == 200 and stopped.json()["outcome"] == "recovery_issued"
    assert stopped.json()["application"]["recovery"]["outstanding"] == "1200.00"
    assert early.status_code == 422 and early.json()["code"] == "invalid_state"
    assert repaid.json()["state"] == "stopped"
    assert repaid.json()["due"] == {"enterprise": "4200.00", "government": "3000.00"}
    assert refunded.status_code == 200 and refunded.json()["refunded"]["own_share_to_enterprise"] == "4200.00"
    assert api.events()[-4:] == ["RecoveryIssued", "RecoveryRepaid", "ProjectStopped", "RefundExecuted"]


def test_a_mis_posted_deposit_is_reversed(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        api.act(application, "confirmation", as_="provider")
        deposit = api.deposit_of(application, "2026-03-02")
        api.act(application, "deposits", deposit)
        reversed_ = api.act(application, "reversals", {"sequence": 4, "reason": "posted on the wrong wallet"})
        not_money = api.act(application, "reversals", {"sequence": 3, "reason": "a confirmation"})
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["own_share_received"] == "0.00" and reversed_.json()["held"]["own_share"] == "0.00"
    assert not_money.status_code == 404
    assert api.events()[-1] == "EventReversed"


def test_deadlines_are_listed_then_applied_by_the_run(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        soon = api.get("/deadlines", as_="auditor", within_days=14).json()
        not_yet = api.get("/deadlines", within_days=13).json()
    with freeze_time("2026-03-20 09:00:00"):
        first = api.post("/deadlines/run")
        second = api.post("/deadlines/run")
        view = api.get(f"/wallets/{ENTERPRISE}/applications/{application['application_id']}").json()
    assert [(a["rule"], a["deadline"], a["days_left"]) for a in soon["applications"]] == [
        ("provider_answer", "2026-03-16", 14)
    ]
    assert not_yet["applications"] == []
    assert first.status_code == 200
    assert first.json() == {
        "lapsed": [
            {
                "enterprise_number": ENTERPRISE,
                "application_id": application["application_id"],
                "rule": "provider_answer",
                "deadline": "2026-03-16",
            }
        ]
    }
    assert second.json() == {"lapsed": []}
    assert view["state"] == "lapsed" and view["ended_on"] == "2026-03-17"


def test_payout_orders_older_than_fourteen_days_are_overdue(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        api.fund(application, date(2026, 3, 2))
        order_id = api.act(application, "payout-orders", {"amount": "1000.00"}).json()["order_id"]
    with freeze_time("2026-03-16 09:00:00"):
        on_time = api.get("/payout-orders", as_="reconciler", overdue="true").json()["orders"]
        every = api.get("/payout-orders", as_="auditor").json()["orders"]
    with freeze_time("2026-03-17 09:00:00"):
        late = api.get("/payout-orders", overdue="true").json()["orders"]
    assert on_time == [] and [o["order_id"] for o in every] == [order_id]
    assert [(o["order_id"], o["amount"], o["due_by"], o["age_days"], o["overdue"]) for o in late] == [
        (order_id, "1000.00", "2026-03-16", 15, True)
    ]


def test_the_audit_trail_shows_legs_and_retention(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        api.fund(application, date(2026, 3, 2))
    rows = api.get(f"/wallets/{ENTERPRISE}/audit-trail", as_="auditor").json()["rows"]
    assert [r["type"] for r in rows] == [
        "WalletOpened",
        "ApplicationSubmitted",
        "ApplicationConfirmed",
        "OwnShareDeposited",
        "SubsidyToppedUp",
    ]
    assert rows[0]["application_id"] is None and rows[0]["retain_until"] == "2031-03-02"
    assert {r["retain_until"] for r in rows[1:]} == {"2031-03-02"}
    assert rows[4]["legs"] == [
        {"account": "government", "amount": "-3000.00"},
        {"account": "held_subsidy", "amount": "3000.00"},
    ]
    events = api.get(f"/wallets/{ENTERPRISE}/events").json()["events"]
    assert [r["hash"] for r in rows] == [e["hash"] for e in events]


def test_reconciliation_totals_per_account_kind_and_value_date(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        application = api.submit(date(2026, 3, 16))
        api.act(application, "confirmation", as_="provider")
    with freeze_time("2026-03-05 09:00:00"):
        deposit = api.deposit_of(application, "2026-03-03")
        api.act(application, "deposits", deposit)
        api.act(application, "top-ups", {"amount": "3000.00", "value_date": "2026-03-05"})
        totals = api.get("/reconciliation/totals", as_="reconciler", **{"from": "2026-03-03", "to": "2026-03-03"})
        backwards = api.get("/reconciliation/totals", **{"from": "2026-03-04", "to": "2026-03-03"})
    assert totals.json() == {
        "from": "2026-03-03",
        "to": "2026-03-03",
        "rows": [
            {"date": "2026-03-03", "account_kind": "enterprise", "in": "0.00", "out": "7000.00", "net": "-7000.00"},
            {"date": "2026-03-03", "account_kind": "held", "in": "7000.00", "out": "0.00", "net": "7000.00"},
        ],
    }
    assert backwards.status_code == 422


def test_new_sme_figures_are_filed(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        filed = api.post(
            f"/wallets/{ENTERPRISE}/sme-figures",
            {"year": 2026, "sme": {"fte": 120, "turnover": "30000000", "balance_total": "20000000"}},
        )
    assert filed.status_code == 200 and filed.json()["version"] == 2
    assert api.events() == ["WalletOpened", "SmeFiguresFiled"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"sme": {"fte": 300, "turnover": "60000000", "balance_total": "50000000"}}, "not_an_sme"),
        ({"flemish_establishment": False}, "not_eligible"),
        ({"public_participation_percent": 25}, "not_eligible"),
        ({"enterprise_number": "0403170702"}, "invalid_enterprise_number"),
    ],
)
def test_a_wallet_the_rules_refuse_is_a_422(api: Api, body, code):
    request = {
        "enterprise_number": ENTERPRISE,
        "name": "Bakkerij Peeters",
        "sme": {"fte": 10, "turnover": "1000000.00", "balance_total": "500000.00"},
    } | body
    response = api.post("/wallets", request)
    assert (response.status_code, response.json()["code"]) == (422, code)
    assert response.headers["content-type"] == "application/problem+json"


def test_a_second_wallet_for_an_enterprise_is_a_409(api: Api):
    api.open_wallet()
    again = api.post(
        "/wallets",
        {
            "enterprise_number": "403170701",
            "name": "Peeters",
            "sme": {"fte": 1, "turnover": "1.00", "balance_total": "1.00"},
        },
    )
    assert again.status_code == 409 and again.json()["code"] == "already_exists"


@pytest.mark.parametrize(
    ("fields", "today", "code"),
    [
        ({"provider": "DV.0207084"}, "2026-03-02", "invalid_provider_number"),
        ({"themes": []}, "2026-03-02", "theme_required"),
        ({"fee": "50.00"}, "2026-03-02", "below_minimum_cost"),
        ({}, "2026-04-01", "deadline_passed"),
        ({"service": "coaching"}, "2026-03-02", "service_not_eligible"),
    ],
)
def test_an_application_the_rules_refuse_is_a_422_and_records_nothing(api: Api, fields, today, code):
    with freeze_time("2026-03-02 08:00:00"):
        api.open_wallet()
    with freeze_time(f"{today} 09:00:00"):
        response = api.post(f"/wallets/{ENTERPRISE}/applications", training(date(2026, 3, 16), **fields))
    assert (response.status_code, response.json()["code"]) == (422, code), response.text
    assert api.events() == ["WalletOpened"]


def test_the_ceiling_refuses_an_application_once_used_up(api: Api):
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        api.submit(date(2026, 3, 16), fee="25000.00")
        refused = api.post(
            f"/wallets/{ENTERPRISE}/applications",
            {
                "service": "training",
                "provider": TRAINER,
                "themes": ["digitalisation"],
                "enrolled_on": "2026-03-01",
                "starts_on": "2026-03-16",
                "cost_lines": [{"kind": "fee", "amount": "1000.00"}],
            },
        )
    assert refused.status_code == 422 and refused.json()["code"] == "ceiling_exceeded"


def test_a_missing_wallet_or_application_is_a_404(api: Api):
    api.open_wallet()
    assert api.get(f"/wallets/{OTHER_ENTERPRISE}").json()["code"] == "not_found"
    missing = api.get(f"/wallets/{ENTERPRISE}/applications/nope")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
