"""Decisions without storage: a wallet, a clock, and rows of command x application
state x day relative to each deadline -> accepted or the refusal code.

The application of every row is submitted on 2 March 2026 for a training that
starts on 16 March: the provider answers by 16 March, the own share reaches the
account by 1 April (posted by 6 April, the posting grace), the service is
finished by 31 December 2027. The last allowed day passes; the next is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import pytest

from ledger.domain import commands as c
from ledger.domain import lifecycle
from ledger.domain.errors import LedgerError
from ledger.domain.wallet import Wallet
from tests.conftest import BACK_OFFICE, ENTERPRISE, PROVIDER_ACTOR, sme, training

SUBMITTED = date(2026, 3, 2)
ANSWER_BY = date(2026, 3, 16)
DEPOSIT_BY = date(2026, 4, 1)
POSTED_BY = date(2026, 4, 6)
COMPLETE_BY = date(2027, 12, 31)
DAY = timedelta(days=1)


def at(day: date) -> datetime:
    """Noon in Brussels on ``day`` (11:00 UTC in winter, 10:00 in summer: same date)."""
    return datetime.combine(day, time(10, 0), tzinfo=UTC)


class Case:
    """One application of a fresh wallet, brought to a state by commands on early days."""

    def __init__(self, state: str):
        self.wallet = Wallet.open(
            uuid.uuid4(), c.OpenWallet(enterprise_number=ENTERPRISE, name="Case", sme=sme()), BACK_OFFICE, at(SUBMITTED)
        )
        application = self.wallet.submit(
            c.SubmitApplication(**training(date(2026, 3, 16), fee="10000.00")),
            "+++090/9337/55493+++",
            BACK_OFFICE,
            at(SUBMITTED),
        )
        self.id = application.application_id
        self.order_id: str | None = None
        steps = STATES[state]
        for step in steps:
            step(self)

    @property
    def application(self):
        return self.wallet.state.applications[self.id]

    def confirm(self, day: date = SUBMITTED) -> None:
        self.wallet.confirm(self.id, c.ConfirmApplication(), PROVIDER_ACTOR, at(day))

    def refuse(self, day: date) -> None:
        self.wallet.refuse(self.id, c.RefuseApplication(reason="related parties"), PROVIDER_ACTOR, at(day))

    def deposit(self, day: date = SUBMITTED, value_date: date | None = None) -> None:
        a = self.application
        command = c.DepositOwnShare(
            amount=a.own_share, payment_reference=a.payment_reference, value_date=value_date or day
        )
        self.wallet.deposit_own_share(self.id, command, BACK_OFFICE, at(day))

    def top_up(self, day: date = SUBMITTED) -> None:
        command = c.TopUpSubsidy(amount=self.application.subsidy, value_date=day)
        self.wallet.top_up(self.id, command, BACK_OFFICE, at(day))

    def order(self, day: date = SUBMITTED, amount: int = 400_000) -> None:
        self.order_id = self.wallet.order_payout(self.id, c.OrderPayout(amount=amount), BACK_OFFICE, at(day))

    def execute(self, day: date = SUBMITTED) -> None:
        command = c.ExecutePayout(order_id=self.order_id, value_date=day)
        self.wallet.execute_payout(self.id, command, BACK_OFFICE, at(day))

    def complete(self, day: date, completed_on: date | None = None) -> None:
        command = c.CompleteService(completed_on=completed_on or day)
        self.wallet.complete(self.id, command, PROVIDER_ACTOR, at(day))

    def stop(self, day: date, reason: str = "on_request") -> None:
        self.wallet.stop(self.id, c.StopProject(reason=reason, proof="doc"), BACK_OFFICE, at(day))

    def repay(self, day: date) -> None:
        recovery = self.application.recovery
        command = c.RepayRecovery(amount=recovery.amount - recovery.repaid, value_date=day)
        self.wallet.repay_recovery(self.id, command, BACK_OFFICE, at(day))

    def refund(self, day: date) -> None:
        due = self.application.held("due_enterprise")
        command = c.ExecuteRefund(kind="own_share_to_enterprise", amount=due, value_date=day)
        self.wallet.execute_refund(self.id, command, BACK_OFFICE, at(day))

    def run_deadlines(self, day: date) -> None:
        self.wallet.apply_deadlines(BACK_OFFICE, at(day))


STATES: dict[str, list[Callable[[Case], None]]] = {
    "submitted": [],
    "deposited, not confirmed": [lambda k: k.deposit()],
    "confirmed": [lambda k: k.confirm()],
    "confirmed and deposited": [lambda k: k.confirm(), lambda k: k.deposit()],
    "funded": [lambda k: k.confirm(), lambda k: k.deposit(), lambda k: k.top_up()],
    "ordered": [lambda k: k.confirm(), lambda k: k.deposit(), lambda k: k.top_up(), lambda k: k.order()],
    "ordered on the completion deadline": [
        lambda k: k.confirm(),
        lambda k: k.deposit(),
        lambda k: k.top_up(),
        lambda k: k.order(COMPLETE_BY),
    ],
    "partly paid, recovery issued": [
        lambda k: k.confirm(),
        lambda k: k.deposit(),
        lambda k: k.top_up(),
        lambda k: k.order(),
        lambda k: k.execute(),
        lambda k: k.stop(SUBMITTED, "other"),
    ],
    "lapsed, own share due back": [lambda k: k.deposit(), lambda k: k.run_deadlines(ANSWER_BY + DAY)],
}

ROWS = [
    # command, application state, day it is posted -> accepted or the refusal code
    ("confirm", "submitted", ANSWER_BY, "accepted"),
    ("confirm", "submitted", ANSWER_BY + DAY, "deadline_passed"),
    ("refuse", "submitted", ANSWER_BY, "accepted"),
    ("refuse", "submitted", ANSWER_BY + DAY, "deadline_passed"),
    ("stop", "submitted", ANSWER_BY, "accepted"),
    ("stop", "submitted", ANSWER_BY + DAY, "deadline_passed"),
    # the own share, by its value date (the day posted here), posted within the grace
    ("deposit", "confirmed", DEPOSIT_BY, "accepted"),
    ("deposit", "confirmed", DEPOSIT_BY + DAY, "deadline_passed"),
    ("deposit on time, posted late", "confirmed", POSTED_BY, "accepted"),
    ("deposit on time, posted late", "confirmed", POSTED_BY + DAY, "deadline_passed"),
    ("stop", "confirmed", POSTED_BY, "accepted"),
    ("stop", "confirmed", POSTED_BY + DAY, "deadline_passed"),
    # the provider never answered: nothing moves it on after its answer deadline
    ("deposit", "submitted", ANSWER_BY, "accepted"),
    ("deposit", "submitted", ANSWER_BY + DAY, "deadline_passed"),
    ("stop", "deposited, not confirmed", ANSWER_BY + DAY, "deadline_passed"),
    # completion: no order, top-up, stop or completion after it while money is held
    ("top_up", "confirmed and deposited", COMPLETE_BY, "accepted"),
    ("top_up", "confirmed and deposited", COMPLETE_BY + DAY, "deadline_passed"),
    ("order", "funded", COMPLETE_BY, "accepted"),
    ("order", "funded", COMPLETE_BY + DAY, "deadline_passed"),
    ("stop", "funded", COMPLETE_BY, "accepted"),
    ("stop", "funded", COMPLETE_BY + DAY, "deadline_passed"),
    ("complete", "funded", COMPLETE_BY, "accepted"),
    ("complete", "funded", COMPLETE_BY + DAY, "deadline_passed"),
    # settling what is due stays allowed after every deadline
    ("execute", "ordered on the completion deadline", COMPLETE_BY + DAY, "accepted"),
    ("execute", "ordered", COMPLETE_BY + DAY, "accepted"),
    ("repay", "partly paid, recovery issued", COMPLETE_BY + DAY, "accepted"),
    ("refund", "lapsed, own share due back", COMPLETE_BY + DAY, "accepted"),
]

ACTIONS: dict[str, Callable[[Case, date], None]] = {
    "confirm": lambda k, day: k.confirm(day),
    "refuse": lambda k, day: k.refuse(day),
    "stop": lambda k, day: k.stop(day),
    "deposit": lambda k, day: k.deposit(day),
    "deposit on time, posted late": lambda k, day: k.deposit(day, value_date=DEPOSIT_BY),
    "top_up": lambda k, day: k.top_up(day),
    "order": lambda k, day: k.order(day),
    "complete": lambda k, day: k.complete(day, completed_on=min(day, COMPLETE_BY)),
    "execute": lambda k, day: k.execute(day),
    "repay": lambda k, day: k.repay(day),
    "refund": lambda k, day: k.refund(day),
}


@pytest.mark.parametrize(("command", "state", "day", "expected"), ROWS, ids=lambda v: str(v))
def test_each_command_is_judged_against_every_deadline_of_its_application(command, state, day, expected):
    case = Case(state)
    version = case.wallet.version
    try:
        ACTIONS[command](case, day)
        outcome = "accepted"
    except LedgerError as refusal:
        outcome = refusal.code
        assert case.wallet.version == version and case.wallet.collect_events()[-1].originator_version == version
    assert outcome == expected


def test_every_command_on_an_application_has_a_row_in_the_binding_table():
    application_methods = {
        "confirm",
        "refuse",
        "deposit_own_share",
        "top_up",
        "order_payout",
        "execute_payout",
        "complete",
        "stop",
        "repay_recovery",
        "execute_refund",
        "reverse",
    }
    assert set(lifecycle.BINDINGS) == application_methods
    assert all(hasattr(Wallet, name) for name in application_methods)


def test_a_lapse_is_recorded_on_the_first_day_after_the_deadline_not_the_day_of_the_run():
    case = Case("submitted")
    case.run_deadlines(ANSWER_BY + 10 * DAY)
    lapsed = case.wallet.collect_events()[-1]
    assert type(lapsed).__name__ == "ApplicationLapsed"
    assert (lapsed.rule, lapsed.deadline, lapsed.business_date) == ("provider_answer", ANSWER_BY, ANSWER_BY + DAY)


def test_the_own_share_lapse_waits_for_the_posting_grace():
    case = Case("confirmed")
    case.run_deadlines(POSTED_BY)
    assert case.application.is_open
    case.run_deadlines(POSTED_BY + DAY)
    assert (case.application.final_state, case.application.final_on) == ("lapsed", DEPOSIT_BY + DAY)


def test_a_closure_after_a_payout_executed_late_is_dated_on_that_payout_not_before_it():
    case = Case("ordered on the completion deadline")
    case.execute(COMPLETE_BY + 5 * DAY)
    case.wallet.apply_deadlines(BACK_OFFICE, at(COMPLETE_BY + 9 * DAY))
    closed = case.wallet.collect_events()[-1]
    assert type(closed).__name__ == "ProjectClosed" and closed.business_date == COMPLETE_BY + 5 * DAY


@pytest.mark.parametrize(
    ("state", "steps", "expected"),
    [
        ("submitted", [], ("provider_answer", ANSWER_BY)),
        ("confirmed", [], ("own_share_deposit", DEPOSIT_BY)),
        ("funded", [], ("completion", COMPLETE_BY)),
        ("funded", [lambda k: k.complete(date(2026, 4, 10))], ("closure", COMPLETE_BY)),
        ("funded", [lambda k: k.order(amount=1_000_000), lambda k: k.execute()], None),
        ("funded", [lambda k: k.stop(date(2026, 4, 10))], None),
    ],
    ids=["submitted", "confirmed", "funded", "completed, money held", "paid out", "stopped"],
)
def test_the_next_deadline_follows_the_rule_book(state, steps, expected):
    case = Case(state)
    for step in steps:
        step(case)
    assert lifecycle.next_deadline(case.application) == expected


def test_a_deposit_or_top_up_that_a_pending_order_draws_on_cannot_be_reversed():
    # found by the stateful property test: the subsidy reversed under a pending order
    # left the order drawing on nothing, and the closure then made due_government negative
    case = Case("funded")
    case.order(amount=350_000)  # 2,450.00 of own share and 1,050.00 of subsidy
    top_up = next(e for e in case.wallet.pending_events if type(e).__name__ == "SubsidyToppedUp")
    subsidy_held = case.application.held("held_subsidy")
    ordered_subsidy = case.application.pending_orders[0].subsidy_part
    reversal = c.ReverseEvent(sequence=top_up.originator_version, reason="posted twice")
    with pytest.raises(LedgerError, match="payout orders still draw on that money") as refused:
        case.wallet.reverse(case.id, top_up, reversal, BACK_OFFICE, at(SUBMITTED))
    assert refused.value.code == "insufficient_funds"
    assert case.application.held("held_subsidy") == subsidy_held and ordered_subsidy > 0


def test_a_stop_after_payouts_that_carried_no_subsidy_stops_at_once_instead_of_a_recovery_of_nothing():
    # found by the stateful property test: a payout of 0.01 carries 0.00 of subsidy,
    # and a stop for another reason issued a recovery of 0.00 that could never be repaid
    case = Case("funded")
    case.order(amount=1)
    case.execute()
    assert case.application.paid_subsidy == 0
    case.stop(SUBMITTED, reason="other")
    assert case.application.final_state == "stopped" and case.application.recovery is None
    assert case.application.held("due_enterprise") == case.application.own_share - 1


def test_a_service_starting_after_its_completion_deadline_is_refused():
    wallet = Wallet.open(
        uuid.uuid4(), c.OpenWallet(enterprise_number=ENTERPRISE, name="Case", sme=sme()), BACK_OFFICE, at(SUBMITTED)
    )
    command = c.SubmitApplication(**training(date(2099, 1, 5)) | {"enrolled_on": "2026-03-01"})
    with pytest.raises(LedgerError, match="starts_on 2099-01-05 lies after the completion deadline 2027-12-31"):
        wallet.submit(command, "+++090/9337/55493+++", BACK_OFFICE, at(SUBMITTED))
    assert wallet.version == 1


def test_an_application_above_the_maximum_project_amount_is_refused():
    wallet = Wallet.open(
        uuid.uuid4(), c.OpenWallet(enterprise_number=ENTERPRISE, name="Case", sme=sme()), BACK_OFFICE, at(SUBMITTED)
    )
    lines = [{"kind": "fee", "amount": "1000000000000.00"}] * 100
    command = c.SubmitApplication(**training(date(2026, 3, 16)) | {"cost_lines": lines})
    with pytest.raises(LedgerError, match="above the maximum of 1000000.00") as refused:
        wallet.submit(command, "+++090/9337/55493+++", BACK_OFFICE, at(SUBMITTED))
    assert refused.value.code == "validation_error" and wallet.version == 1
