"""Random lives of applications in one wallet, shaped like the rule book's
lifecycle (RULES.md sections 4-6): submit, answer, fund, pay, complete, stop,
settle, reverse, file figures, let time pass and run the deadlines.

After every step the chain verifies, the wallet replayed as of every business
date seen holds nothing negative and stays within its ceilings, and a refused
command has recorded nothing. A second test checks that the random lives
reach every event type, so the money paths are exercised at all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

from freezegun import freeze_time
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain import events as ev
from ledger.domain.clock import brussels_date
from ledger.domain.errors import LedgerError
from ledger.domain.money import parse_euro
from tests.conftest import BACK_OFFICE, ENTERPRISE, PROVIDER_ACTOR, sme, training

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FEES = ("500.00", "1234.56", "2999.99", "4000.00", "8000.00")
"""Modest fees (30 % subsidy of 150.00 .. 2,400.00): several fit one 7,500.00 ceiling."""
FIGURES = (sme(), sme(), sme(fte=60), sme(fte=300))
"""Small (twice as likely), medium, large."""
STOP_REASONS = get_args(c.StopReason)
REFUND_KINDS = get_args(c.RefundKind)
OPEN_STATES = frozenset({"submitted", "confirmed", "funded", "paying", "paid_out", "completed"})
MAX_OPEN_APPLICATIONS = 4
MAX_FILINGS = 2
MAX_REVERSALS = 2
"""Per example: more would crowd out the lifecycle (a reversed deposit is posted
again, and reversed again...)."""
SMALL_JUMP_DAYS = 7
IDLE_JUMP_DAYS = 30
"""With no deadline ahead, time may pass by up to this many days."""

SETTINGS = settings(
    derandomize=True,
    database=None,
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def day(iso: str) -> date:
    return date.fromisoformat(iso)


def cents(text: str) -> int:
    """A view's money string in cents, sign kept (``parse_euro`` refuses negatives)."""
    return -parse_euro(text[1:]) if text.startswith("-") else parse_euro(text)


def dates_between(first: date, last: date) -> st.SearchStrategy[date]:
    """A day from ``first`` to ``last`` (as day offsets: under freezegun the two may
    be of different date classes, which ``st.dates`` refuses)."""
    return st.integers(0, max(0, (last - first).days)).map(lambda days: first + timedelta(days=days))


def is_open(view: dict[str, Any]) -> bool:
    return view["state"] in OPEN_STATES


def own_share_short(view: dict[str, Any]) -> bool:
    return cents(view["own_share_received"]) < cents(view["own_share"])


def not_ordered(view: dict[str, Any]) -> int:
    """Held for the application and not drawn on by a pending payout order."""
    held = view["held"]
    return cents(held["own_share"]) + cents(held["subsidy"]) - cents(view["ordered_not_executed"])


def lapsed_in_fact(view: dict[str, Any], today: date) -> bool:
    """A deadline passed unmet: every command that would move it on is refused."""
    deadlines = view["deadlines"]
    if view["confirmed_on"] is None and today > day(deadlines["answer_by"]):
        return True
    posted_by = deadlines["deposit_posted_by"]
    if own_share_short(view) and posted_by is not None and today > day(posted_by):
        return True
    return today > day(deadlines["complete_by"]) and (not_ordered(view) > 0 or view["recovery"] is not None)


def moves_on(view: dict[str, Any], today: date) -> bool:
    """Open and within every deadline: a command that moves it on may succeed."""
    return is_open(view) and not lapsed_in_fact(view, today)


def time_targets(view: dict[str, Any], today: date) -> list[date]:
    """The days worth landing on for an open application: its next deadline and,
    while the own share is short, the end of the deposit's posting grace."""
    if not is_open(view) or view["next_deadline"] is None:
        return []
    targets = [day(view["next_deadline"]["date"])]
    posted_by = view["deadlines"]["deposit_posted_by"]
    if own_share_short(view) and posted_by is not None:
        targets.append(day(posted_by))
    return [target for target in targets if target >= today]


@dataclass(frozen=True)
class Example:
    """What one run of the machine did."""

    event_types: frozenset[str]
    accepted: int
    refused: int


class WalletMachine(RuleBasedStateMachine):
    """One wallet, its applications and a frozen clock that only moves forward."""

    def __init__(self, record: Callable[[Example], None] | None = None):
        super().__init__()
        self.record = record
        self.now = START
        self.clock = freeze_time(START)
        self.frozen = self.clock.start()
        self.ledger = KmoLedger("memory://")
        self.ledger.open_wallet(c.OpenWallet(enterprise_number=ENTERPRISE, name="Machine", sme=sme()), BACK_OFFICE)
        self.application_ids: list[str] = []
        self.business_dates: set[date] = set()
        self.checked_version = 0
        self.accepted = 0
        self.refused = 0
        self.filings = 0
        self.reversals = 0
        self._views: dict[str, dict[str, Any]] | None = None

    def teardown(self):
        try:
            if self.record is not None:
                types = frozenset(type(e).__name__ for e in self.ledger.wallet_events(ENTERPRISE))
                self.record(Example(types, self.accepted, self.refused))
        finally:
            self.clock.stop()
            self.ledger.close()

    # ------------------------------------------------------------------ plumbing

    @property
    def today(self) -> date:
        return brussels_date(self.now)

    def version(self) -> int:
        return self.ledger.wallet_summary(ENTERPRISE)["version"]

    def views(self) -> dict[str, dict[str, Any]]:
        """Every application's view, read again after anything was recorded."""
        if self._views is None:
            self._views = {a: self.ledger.application_summary(ENTERPRISE, a) for a in self.application_ids}
        return self._views

    def attempt(self, command: Callable[[], Any]) -> bool:
        """Run a command; a refusal (any LedgerError) must record nothing."""
        before = self.version()
        try:
            command()
        except LedgerError:
            self.refused += 1
            assert self.version() == before, "a refused command recorded events"
            return False
        self.accepted += 1
        self._views = None
        return True

    def candidates(self, fits: Callable[[dict[str, Any], date], bool]) -> list[str]:
        return [a for a, view in self.views().items() if fits(view, self.today)]

    # ------------------------------------------------------------------ submission and answer

    def submit(self, fee: str, starts_in: int) -> None:
        command = c.SubmitApplication(**training(self.today + timedelta(days=starts_in), fee=fee))

        def act():
            _wallet, application_id = self.ledger.submit_application(ENTERPRISE, command, BACK_OFFICE)
            self.application_ids.append(application_id)

        self.attempt(act)

    @initialize(fee=st.sampled_from(FEES), starts_in=st.integers(-14, 10))
    def an_application_is_submitted_first(self, fee, starts_in):
        self.submit(fee, starts_in)

    @precondition(lambda self: len(self.candidates(lambda v, _t: is_open(v))) < MAX_OPEN_APPLICATIONS)
    @rule(fee=st.sampled_from(FEES), starts_in=st.integers(-14, 10))
    def an_application_is_submitted(self, fee, starts_in):
        self.submit(fee, starts_in)

    @staticmethod
    def awaits_answer(view: dict[str, Any], today: date) -> bool:
        return view["state"] == "submitted" and moves_on(view, today)

    @precondition(lambda self: self.candidates(self.awaits_answer))
    @rule(data=st.data())
    def the_provider_answers(self, data):
        application_id = data.draw(st.sampled_from(self.candidates(self.awaits_answer)))
        if data.draw(st.sampled_from(["confirm", "confirm", "confirm", "refuse"])) == "confirm":
            self.attempt(lambda: self.ledger.confirm(ENTERPRISE, application_id, PROVIDER_ACTOR))
        else:
            command = c.RefuseApplication(reason="related parties")
            self.attempt(lambda: self.ledger.refuse(ENTERPRISE, application_id, command, PROVIDER_ACTOR))

    # ------------------------------------------------------------------ money in

    @staticmethod
    def awaits_own_share(view: dict[str, Any], today: date) -> bool:
        return own_share_short(view) and moves_on(view, today)

    @staticmethod
    def awaits_subsidy(view: dict[str, Any], today: date) -> bool:
        return (
            view["confirmed_on"] is not None
            and not own_share_short(view)
            and cents(view["subsidy_received"]) < cents(view["subsidy"])
            and moves_on(view, today)
        )

    def fundable(self) -> list[tuple[str, str]]:
        return [(a, "deposit") for a in self.candidates(self.awaits_own_share)] + [
            (a, "top_up") for a in self.candidates(self.awaits_subsidy)
        ]

    @precondition(lambda self: self.fundable())
    @rule(data=st.data())
    def money_comes_in(self, data):
        """The own share with a value date inside its window (now and then one
        after it, to be refused), or the subsidy once the own share is in."""
        application_id, step = data.draw(st.sampled_from(self.fundable()))
        view = self.views()[application_id]
        submitted_on = day(view["submitted_on"])
        if step == "top_up":
            command = c.TopUpSubsidy(
                amount=cents(view["subsidy"]), value_date=data.draw(dates_between(submitted_on, self.today))
            )
            self.attempt(lambda: self.ledger.top_up(ENTERPRISE, application_id, command, BACK_OFFICE))
            return
        deposit_by = day(view["deadlines"]["deposit_by"])
        last_value_date = min(self.today, deposit_by)
        if self.today > deposit_by and data.draw(st.integers(0, 3)) == 0:
            last_value_date = self.today  # may lie after the deadline: refused
        command = c.DepositOwnShare(
            amount=cents(view["own_share"]),
            payment_reference=view["payment_reference"],
            value_date=data.draw(dates_between(submitted_on, last_value_date)),
        )
        self.attempt(lambda: self.ledger.deposit_own_share(ENTERPRISE, application_id, command, BACK_OFFICE))

    # ------------------------------------------------------------------ money out

    @staticmethod
    def orderable(view: dict[str, Any], today: date) -> bool:
        return (
            view["state"] in ("funded", "paying", "completed")
            and view["recovery"] is None
            and cents(view["subsidy_received"]) == cents(view["subsidy"])
            and not_ordered(view) > 0
            and today <= day(view["deadlines"]["complete_by"])
            and moves_on(view, today)
        )

    def payable(self) -> list[tuple[str, str]]:
        steps = [(a, "order") for a in self.candidates(self.orderable)]
        for application_id, view in self.views().items():
            steps += [(application_id, o["order_id"]) for o in view["payout_orders"] if o["state"] == "ordered"]
        return steps

    @precondition(lambda self: self.payable())
    @rule(data=st.data())
    def a_payout_is_ordered_or_executed(self, data):
        """An order of part or all of what is held and not yet ordered; or a
        pending order executed (also after the completion deadline)."""
        application_id, step = data.draw(st.sampled_from(self.payable()))
        view = self.views()[application_id]
        if step == "order":
            available = not_ordered(view)
            amount = data.draw(st.one_of(st.just(available), st.integers(1, available)))
            command = c.OrderPayout(amount=amount)
            self.attempt(lambda: self.ledger.order_payout(ENTERPRISE, application_id, command, BACK_OFFICE))
            return
        order = next(o for o in view["payout_orders"] if o["order_id"] == step)
        value_date = data.draw(dates_between(day(order["ordered_on"]), self.today))
        command = c.ExecutePayout(order_id=step, value_date=value_date)
        self.attempt(lambda: self.ledger.execute_payout(ENTERPRISE, application_id, command, BACK_OFFICE))

    # ------------------------------------------------------------------ completion and stops

    @staticmethod
    def completable(view: dict[str, Any], today: date) -> bool:
        return (
            view["confirmed_on"] is not None
            and view["completed_on"] is None
            and today >= day(view["starts_on"])
            and moves_on(view, today)
        )

    @precondition(lambda self: self.candidates(self.completable))
    @rule(data=st.data())
    def the_service_is_completed(self, data):
        application_id = data.draw(st.sampled_from(self.candidates(self.completable)))
        view = self.views()[application_id]
        last = min(self.today, day(view["deadlines"]["complete_by"]))
        command = c.CompleteService(completed_on=data.draw(dates_between(day(view["starts_on"]), last)))
        self.attempt(lambda: self.ledger.complete(ENTERPRISE, application_id, command, BACK_OFFICE))

    @staticmethod
    def stoppable(view: dict[str, Any], today: date) -> bool:
        return view["recovery"] is None and moves_on(view, today)

    @precondition(lambda self: self.candidates(self.stoppable))
    @rule(data=st.data())
    def the_enterprise_stops(self, data):
        """Any reason; once fully paid out only the provider's cancellation stops it.
        Mostly with the proof document, now and then without."""
        application_id = data.draw(st.sampled_from(self.candidates(self.stoppable)))
        view = self.views()[application_id]
        fully_paid = cents(view["paid_out"]["total"]) == cents(view["project_amount"])
        reason = "provider_cancelled" if fully_paid else data.draw(st.sampled_from(STOP_REASONS))
        proof = data.draw(st.sampled_from(["doc", "doc", "doc", None]))
        command = c.StopProject(reason=reason, proof=proof)
        self.attempt(lambda: self.ledger.stop(ENTERPRISE, application_id, command, BACK_OFFICE))

    # ------------------------------------------------------------------ settling what is due

    def settleable(self) -> list[tuple[str, str]]:
        steps = []
        for application_id, view in self.views().items():
            if cents(view["due"]["enterprise"]) > 0:
                steps.append((application_id, "own_share_to_enterprise"))
            if cents(view["due"]["government"]) > 0:
                steps.append((application_id, "subsidy_to_government"))
            if view["recovery"] is not None and is_open(view):
                steps.append((application_id, "repay"))
        return steps

    @precondition(lambda self: self.settleable())
    @rule(data=st.data())
    def money_due_is_settled(self, data):
        """A refund that is due executed, or a recovery repaid: in full or in part."""
        application_id, step = data.draw(st.sampled_from(self.settleable()))
        view = self.views()[application_id]
        value_date = data.draw(dates_between(day(view["submitted_on"]), self.today))
        if step == "repay":
            outstanding = cents(view["recovery"]["outstanding"])
            amount = data.draw(st.one_of(st.just(outstanding), st.integers(1, outstanding)))
            command = c.RepayRecovery(amount=amount, value_date=value_date)
            self.attempt(lambda: self.ledger.repay_recovery(ENTERPRISE, application_id, command, BACK_OFFICE))
            return
        due = cents(view["due"]["enterprise" if step == "own_share_to_enterprise" else "government"])
        amount = data.draw(st.one_of(st.just(due), st.integers(1, due)))
        refund = c.ExecuteRefund(kind=step, amount=amount, value_date=value_date)
        self.attempt(lambda: self.ledger.execute_refund(ENTERPRISE, application_id, refund, BACK_OFFICE))

    def reversible(self) -> list[tuple[str, int]]:
        """Money events not reversed yet, of an open application (a refund also after it ended)."""
        events = self.ledger.wallet_events(ENTERPRISE)
        reversed_ = {e.reversed_sequence for e in events if isinstance(e, ev.EventReversed)}
        views = self.views()
        return [
            (e.application_id, e.originator_version)
            for e in events
            if type(e).__name__ in ev.RECEIPTS
            and e.originator_version not in reversed_
            and (isinstance(e, ev.RefundExecuted) or is_open(views[e.application_id]))
        ]

    @precondition(lambda self: self.reversals < MAX_REVERSALS and self.reversible())
    @rule(data=st.data())
    def a_money_event_is_reversed(self, data):
        application_id, sequence = data.draw(st.sampled_from(self.reversible()))
        command = c.ReverseEvent(sequence=sequence, reason="mis-posted")
        self.reversals += self.attempt(lambda: self.ledger.reverse(ENTERPRISE, application_id, command, BACK_OFFICE))

    # ------------------------------------------------------------------ the enterprise, deadlines and time

    @precondition(lambda self: self.filings < MAX_FILINGS)
    @rule(next_year=st.booleans(), figures=st.sampled_from(FIGURES))
    def new_sme_figures_are_filed(self, next_year, figures):
        command = c.FileSmeFigures(year=self.today.year + next_year, sme=figures)
        self.filings += self.attempt(lambda: self.ledger.file_sme_figures(ENTERPRISE, command, BACK_OFFICE))

    @precondition(lambda self: self.candidates(lambda v, t: is_open(v) and lapsed_in_fact(v, t)))
    @rule()
    def the_deadlines_run(self):
        """Records a lapse or closure for each deadline passed; an own-share lapse
        only after its posting grace; a second run finds nothing left."""
        reports = self.ledger.run_deadlines()
        self._views = None
        for report in reports:
            if report.rule == "own_share_deposit":
                posted_by = self.views()[report.application_id]["deadlines"]["deposit_posted_by"]
                assert self.today > day(posted_by), "an own-share lapse was recorded inside the posting grace"
        assert self.ledger.run_deadlines() == []

    @rule(data=st.data())
    def time_passes(self, data):
        """To an open application's next deadline, or the day after it, or a few
        days but never past that day after."""
        targets = sorted({t for view in self.views().values() for t in time_targets(view, self.today)})
        if not targets:
            days = data.draw(st.integers(0, IDLE_JUMP_DAYS))
        else:
            target = data.draw(st.sampled_from(targets))
            limit = (target - self.today).days + 1
            days = data.draw(st.one_of(st.just(limit), st.just(limit - 1), st.integers(0, min(SMALL_JUMP_DAYS, limit))))
        self.now += timedelta(days=days)
        self.frozen.move_to(self.now)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def the_chain_and_every_invariant_hold_on_every_business_date(self):
        assert self.ledger.verify_wallet(ENTERPRISE) == []

    @invariant()
    def as_of_every_business_date_nothing_is_negative_and_ceilings_hold(self):
        version = self.version()
        if version != self.checked_version:
            self.business_dates |= {e.business_date for e in self.ledger.wallet_events(ENTERPRISE)}
            self.checked_version = version
        for as_of in sorted(self.business_dates):
            wallet = self.ledger.replay(ENTERPRISE, as_of)
            for balance in ("held", "due"):
                negative = {k: v for k, v in wallet[balance].items() if cents(v) < 0}
                assert not negative, f"as of {as_of}: {balance} {negative}"
            for ceiling in wallet["ceilings"]:
                assert cents(ceiling["remaining"]) >= 0, f"as of {as_of}: ceiling {ceiling}"


WalletMachine.TestCase.settings = SETTINGS
TestRandomLivesKeepEveryInvariant = WalletMachine.TestCase


def frequency_table(examples: list[Example]) -> tuple[dict[str, int], str]:
    counts = {name: sum(name in e.event_types for e in examples) for name in ev.EVENT_TYPES}
    width = max(map(len, counts))
    rows = [f"{name:<{width}}  {n:>3} / {len(examples)}" for name, n in counts.items()]
    accepted = [e.accepted for e in examples]
    rows.append(
        f"accepted commands: {sum(accepted)} in all, per example min {min(accepted)} "
        f"max {max(accepted)}; refused: {sum(e.refused for e in examples)}"
    )
    return counts, "\n".join(rows)


def test_random_lives_reach_every_event_type_in_at_least_5_percent_of_examples():
    examples: list[Example] = []
    run_state_machine_as_test(lambda: WalletMachine(record=examples.append), settings=SETTINGS)
    counts, table = frequency_table(examples)
    print(f"\nexamples with each event type:\n{table}")
    rare = {name: n for name, n in counts.items() if n < 0.05 * len(examples)}
    assert not rare, f"event types in fewer than 5% of {len(examples)} examples: {rare}"
    assert min(e.accepted for e in examples) >= 1, "an example accepted no command besides opening the wallet"
    assert sum(e.accepted for e in examples) >= 5 * len(examples), "fewer than 5 accepted commands per example"
