"""Every deadline at its boundary: the last allowed day passes, the day after lapses."""

from __future__ import annotations

from datetime import date

import pytest
from freezegun import freeze_time

from ledger.domain.errors import DeadlinePassed, InvalidState
from tests.scenarios.helpers import Story


def test_submission_is_allowed_up_to_14_days_after_the_start(ledger):
    with freeze_time("2026-03-16 10:00:00"):
        story = Story(ledger)
        story.submit(date(2026, 3, 2))  # start + 14 = 2026-03-16: the last allowed day
    with freeze_time("2026-03-17 10:00:00"):
        with pytest.raises(DeadlinePassed):
            story.submit(date(2026, 3, 2))
    assert story.events().count("ApplicationSubmitted") == 1


def test_business_dates_follow_the_brussels_calendar(ledger):
    # 23:30 UTC on 16 March is already 17 March in Brussels
    with freeze_time("2026-03-16 23:30:00"):
        story = Story(ledger)
        with pytest.raises(DeadlinePassed):
            story.submit(date(2026, 3, 2))


def test_the_provider_answers_on_day_14_but_not_on_day_15(ledger):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        on_time = story.submit(date(2026, 3, 20))
        late = story.submit(date(2026, 3, 20))
    with freeze_time("2026-03-16 16:00:00"):
        story.confirm(on_time)
    with freeze_time("2026-03-17 08:00:00"):
        with pytest.raises(DeadlinePassed):
            story.confirm(late)
        lapses = story.ledger.run_deadlines()
    assert [(lapse.application_id, lapse.rule, lapse.deadline) for lapse in lapses] == [
        (late, "provider_answer", date(2026, 3, 16))
    ]
    assert story.application(late)["state"] == "lapsed"
    assert story.application(on_time)["state"] == "confirmed"


def test_own_share_on_day_30_is_accepted(ledger):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 20))
        story.confirm(application_id)
    with freeze_time("2026-04-01 09:00:00"):  # 2026-03-02 + 30
        story.deposit(application_id, date(2026, 4, 1))
        assert story.ledger.run_deadlines() == []
    assert story.application(application_id)["own_share_received"] == "7000.00"


def test_a_lapse_run_late_carries_the_day_after_the_deadline_and_returns_the_own_share(ledger):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 20))
        story.deposit(application_id, date(2026, 3, 2))  # before the provider's answer: allowed
    with freeze_time("2026-05-10 09:00:00"):
        story.ledger.run_deadlines()
    view = story.application(application_id)
    assert view["state"] == "lapsed" and view["ended_on"] == "2026-03-17"
    assert view["due"] == {"enterprise": "7000.00", "government": "0.00"}
    lapse = story.ledger.wallet_events(story.en)[-1]
    assert type(lapse).__name__ == "ApplicationLapsed" and lapse.rule == "provider_answer"


def test_in_the_pillars_regime_the_deposit_waits_for_the_confirmation_and_counts_from_it(ledger):
    with freeze_time("2012-03-01 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2012, 3, 10), themes=[])
        with pytest.raises(InvalidState):
            story.deposit(application_id, date(2012, 3, 1))
    with freeze_time("2012-03-10 09:00:00"):
        story.confirm(application_id)
        assert story.application(application_id)["deadlines"]["deposit_by"] == "2012-04-09"
    with freeze_time("2012-04-10 09:00:00"):
        with pytest.raises(DeadlinePassed):
            story.deposit(application_id, date(2012, 4, 10))
        story.deposit(application_id, date(2012, 4, 9))  # in time by its value date, posted in the grace


def test_money_still_held_after_the_completion_year_goes_back(ledger):
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 20))
        story.fund(application_id, date(2026, 3, 2))
        story.pay(application_id, "5000.00", date(2026, 3, 2))
    with freeze_time("2027-12-31 12:00:00"):
        assert story.ledger.run_deadlines() == []
    with freeze_time("2028-01-01 12:00:00"):
        [closure] = story.ledger.run_deadlines()
    assert (closure.rule, closure.deadline) == ("completion", date(2027, 12, 31))
    view = story.application(application_id)
    assert view["state"] == "closed"
    assert view["due"] == {"enterprise": "3500.00", "government": "1500.00"}
    assert story.ledger.verify_wallet(story.en) == []


def test_a_lapse_in_the_next_year_shows_its_subsidy_as_lost_to_its_year_not_reserved(ledger):
    with freeze_time("2025-12-24 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 1, 5), fee="1000.00")  # 300.00 of the 2025 ceiling
    with freeze_time("2026-01-08 09:00:00"):  # the provider's answer was due on 2026-01-07
        [lapse] = story.ledger.run_deadlines()
    assert (lapse.application_id, lapse.rule) == (application_id, "provider_answer")
    ceiling = next(c for c in story.wallet()["ceilings"] if c["year"] == 2025)
    assert (ceiling["reserved"], ceiling["lost"], ceiling["freed"], ceiling["remaining"]) == (
        "0.00",
        "300.00",
        "0.00",
        "7200.00",
    )
    assert story.ledger.verify_wallet(story.en) == []
