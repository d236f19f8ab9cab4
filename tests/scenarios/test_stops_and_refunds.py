"""Each stop path of RULES.md section 5, narrated."""

from __future__ import annotations

from datetime import date

import pytest
from freezegun import freeze_time

from ledger.domain import commands as c
from ledger.domain.errors import InsufficientFunds, InvalidState, ValidationFailed
from ledger.domain.money import parse_euro
from tests.conftest import BACK_OFFICE
from tests.scenarios.helpers import Story


@pytest.fixture
def funded(ledger):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 20))
        story.fund(application_id, date(2026, 3, 2))
    return story, application_id


def remaining(story) -> str:
    return story.wallet()["ceilings"][0]["remaining"]


def test_a_stop_before_any_payout_refunds_the_own_share_and_frees_the_ceiling(funded):
    story, application_id = funded
    with freeze_time("2026-04-01 09:00:00"):
        assert story.stop(application_id, "on_request") == "stopped"
    view = story.application(application_id)
    assert view["state"] == "stopped"
    assert view["due"] == {"enterprise": "7000.00", "government": "3000.00"}
    assert remaining(story) == "7500.00"
    with freeze_time("2026-04-03 09:00:00"):
        story.ledger.handle(
            story.en,
            application_id,
            c.ExecuteRefund(kind="own_share_to_enterprise", amount=parse_euro("7000.00"), value_date=date(2026, 4, 2)),
            BACK_OFFICE,
        )
    assert story.application(application_id)["due"]["enterprise"] == "0.00"
    assert story.ledger.verify_wallet(story.en) == []


def test_a_stop_in_a_later_year_does_not_free_the_ceiling(funded):
    story, application_id = funded
    with freeze_time("2027-01-05 09:00:00"):
        story.stop(application_id, "on_request")
    assert story.application(application_id)["state"] == "stopped"
    assert story.wallet()["ceilings"][0]["remaining"] == "4500.00"


def test_a_justified_stop_after_a_partial_payout_refunds_the_rest_at_once(funded):
    story, application_id = funded
    with freeze_time("2026-04-01 09:00:00"):
        story.pay(application_id, "4000.00", date(2026, 4, 1))
        with pytest.raises(ValidationFailed):
            story.stop(application_id, "finished_cheaper")  # the invoices are the proof
        assert story.stop(application_id, "finished_cheaper", proof="invoice 2026-17") == "stopped"
    view = story.application(application_id)
    assert view["due"] == {"enterprise": "4200.00", "government": "1800.00"}
    # the subsidy paid (1,200) stays used; the unspent 1,800 is freed
    assert remaining(story) == "6300.00"


def test_another_reason_after_a_partial_payout_issues_a_recovery_first(funded):
    story, application_id = funded
    with freeze_time("2026-04-01 09:00:00"):
        story.pay(application_id, "4000.00", date(2026, 4, 1))
        assert story.stop(application_id, "other") == "recovery_issued"
        assert story.application(application_id)["state"] == "paying"
        with pytest.raises(InvalidState):
            story.order(application_id, "100.00")
    with freeze_time("2026-04-10 09:00:00"):
        story.ledger.handle(
            story.en,
            application_id,
            c.RepayRecovery(amount=parse_euro("700.00"), value_date=date(2026, 4, 9)),
            BACK_OFFICE,
        )
        assert story.application(application_id)["state"] == "paying"
        story.ledger.handle(
            story.en,
            application_id,
            c.RepayRecovery(amount=parse_euro("500.00"), value_date=date(2026, 4, 10)),
            BACK_OFFICE,
        )
    view = story.application(application_id)
    assert view["state"] == "stopped"
    assert view["due"] == {"enterprise": "4200.00", "government": "3000.00"}
    ceiling = story.wallet()["ceilings"][0]
    assert (ceiling["remaining"], ceiling["reserved"], ceiling["used"]) == ("7500.00", "0.00", "0.00")
    assert story.ledger.verify_wallet(story.en) == []


def test_a_fully_paid_service_cancelled_by_the_provider_returns_the_own_share_once_repaid(funded):
    story, application_id = funded
    with freeze_time("2026-04-01 09:00:00"):
        story.pay(application_id, "10000.00", date(2026, 4, 1))
        with pytest.raises(InvalidState):
            story.stop(application_id, "on_request")
        assert story.stop(application_id, "provider_cancelled", proof="cancellation letter") == "recovery_issued"
        story.ledger.handle(
            story.en,
            application_id,
            c.RepayRecovery(amount=parse_euro("10000.00"), value_date=date(2026, 4, 1)),
            BACK_OFFICE,
        )
    view = story.application(application_id)
    assert view["state"] == "stopped"
    assert view["due"] == {"enterprise": "7000.00", "government": "3000.00"}
    assert remaining(story) == "4500.00"  # the subsidy paid out is not freed
    assert story.ledger.verify_wallet(story.en) == []


def test_a_provider_refusal_returns_the_deposit_and_frees_the_reservation(ledger):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 20))
        story.deposit(application_id, date(2026, 3, 2))
        story.ledger.handle(story.en, application_id, c.RefuseApplication(reason="related parties"), BACK_OFFICE)
    view = story.application(application_id)
    assert view["state"] == "refused" and view["due"]["enterprise"] == "7000.00"
    assert remaining(story) == "7500.00"


def test_a_payout_order_never_exceeds_what_is_held_and_not_yet_ordered(funded):
    story, application_id = funded
    with freeze_time("2026-04-01 09:00:00"):
        story.order(application_id, "6000.00")
        with pytest.raises(InsufficientFunds):
            story.order(application_id, "4000.01")
        story.order(application_id, "4000.00")


def test_a_mis_posted_deposit_is_reversed_and_posted_again(ledger):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 20))
        story.deposit(application_id, date(2026, 3, 2))
        sequence = story.ledger.wallet_events(story.en)[-1].originator_version
        story.ledger.handle(
            story.en, application_id, c.ReverseEvent(sequence=sequence, reason="wrong wallet"), BACK_OFFICE
        )
        assert story.application(application_id)["own_share_received"] == "0.00"
        with pytest.raises(InvalidState):
            story.ledger.handle(
                story.en, application_id, c.ReverseEvent(sequence=sequence, reason="again"), BACK_OFFICE
            )
        story.deposit(application_id, date(2026, 3, 2))
    assert story.application(application_id)["held"]["own_share"] == "7000.00"
    assert story.events()[-2:] == ["EventReversed", "OwnShareDeposited"]
    assert story.ledger.verify_wallet(story.en) == []


def test_a_deposit_with_a_wrong_amount_or_reference_records_nothing(ledger):
    from ledger.domain.errors import AmountMismatch, PaymentReferenceMismatch

    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 20))
        before = story.events()
        with pytest.raises(AmountMismatch):
            story.deposit(application_id, date(2026, 3, 2), amount="6999.99")
        with pytest.raises(PaymentReferenceMismatch):
            story.deposit(application_id, date(2026, 3, 2), reference="+++123/4567/89002+++")
        assert story.events() == before
