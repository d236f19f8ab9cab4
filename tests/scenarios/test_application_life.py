"""The whole life of an application, narrated, on every store."""

from __future__ import annotations

from datetime import date

import pytest
from freezegun import freeze_time

from ledger.domain.errors import DeadlinePassed
from tests.scenarios.helpers import Story


def test_a_training_is_submitted_funded_paid_out_and_completed(ledger):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 16))
        submitted = story.application(application_id)
        assert submitted["state"] == "submitted"
        assert submitted["subsidy"] == "3000.00" and submitted["own_share"] == "7000.00"
    with freeze_time("2026-03-05 10:00:00"):
        story.fund(application_id, date(2026, 3, 5))
        assert story.application(application_id)["state"] == "funded"
        assert story.wallet()["held"] == {"own_share": "7000.00", "subsidy": "3000.00"}
    with freeze_time("2026-04-01 10:00:00"):
        story.pay(application_id, "4000.00", date(2026, 4, 1))
        paying = story.application(application_id)
        assert paying["state"] == "paying"
        assert paying["paid_out"] == {"own_share": "2800.00", "subsidy": "1200.00", "total": "4000.00"}
        story.pay(application_id, "6000.00", date(2026, 4, 1))
        assert story.application(application_id)["state"] == "paid_out"
        assert story.wallet()["held"] == {"own_share": "0.00", "subsidy": "0.00"}
    assert story.ledger.verify_wallet(story.en) == []
    assert story.events() == [
        "WalletOpened",
        "ApplicationSubmitted",
        "ApplicationConfirmed",
        "OwnShareDeposited",
        "SubsidyToppedUp",
        "PayoutOrdered",
        "PayoutExecuted",
        "PayoutOrdered",
        "PayoutExecuted",
    ]


def test_an_enterprise_that_pays_its_own_share_on_day_31_loses_the_subsidy(ledger):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 16))
        story.confirm(application_id)
    with freeze_time("2026-04-02 09:00:00"):  # day 31 after 2026-03-02
        with pytest.raises(DeadlinePassed, match="reached the account on 2026-04-02"):
            story.deposit(application_id, date(2026, 4, 2))
        assert story.ledger.run_deadlines() == []  # the posting grace: a day-30 deposit may still be posted
    with freeze_time("2026-04-07 09:00:00"):  # the posting grace of 5 days has passed
        lapsed = story.ledger.run_deadlines()
        assert [(r.rule, r.deadline) for r in lapsed] == [("own_share_deposit", date(2026, 4, 1))]
        view = story.application(application_id)
        assert view["state"] == "lapsed" and view["ended_on"] == "2026-04-02"
        ceiling = story.wallet()["ceilings"][0]
        assert ceiling["remaining"] == "7500.00"


def test_an_own_share_that_reached_the_account_on_day_30_may_be_posted_within_the_grace(ledger):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        on_time = story.submit(date(2026, 3, 16))
        too_late = story.submit(date(2026, 3, 16), fee="500.00")
        story.confirm(on_time)
        story.confirm(too_late)
    with freeze_time("2026-04-06 09:00:00"):  # deadline 2026-04-01 + 5 days of grace: the last day
        story.deposit(on_time, date(2026, 4, 1))
    with freeze_time("2026-04-07 09:00:00"):
        with pytest.raises(DeadlinePassed, match="own share deposit was due by 2026-04-01"):
            story.deposit(too_late, date(2026, 4, 1))
    assert story.application(on_time)["own_share_received"] == story.application(on_time)["own_share"]


def test_a_small_enterprise_with_6000_granted_gets_the_ceilings_remainder_of_1500(ledger):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        story.submit(date(2026, 3, 16), fee="20000.00")  # 30% = 6,000
        application_id = story.submit(date(2026, 3, 16), fee="10000.00")
    view = story.application(application_id)
    assert (view["subsidy"], view["own_share"]) == ("1500.00", "8500.00")
    assert story.wallet()["ceilings"][0]["remaining"] == "0.00"


def test_a_pillars_training_of_10000_is_capped_by_the_training_pillar_at_2500(ledger):
    with freeze_time("2012-06-01 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2012, 6, 10), themes=[])
    view = story.application(application_id)
    assert (view["regime"], view["rate"], view["subsidy"], view["own_share"]) == (
        "pillars",
        "50.00",
        "2500.00",
        "7500.00",
    )
