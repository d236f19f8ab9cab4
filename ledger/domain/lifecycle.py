"""The life of one application (steunaanvraag), RULES.md sections 4 and 5, in
one place: its windows and deadlines, which deadline binds which command, the
one guard every command on an application passes, how an application ends and
what that does to the ceiling, and the outcomes of a stop.

Everything here decides; nothing reads the clock (``today`` is given) and
nothing applies an event. The numbers come from the application's recorded
:class:`~ledger.domain.state.Deadlines` (fixed when it was submitted) or from its
:class:`~ledger.domain.regimes.Regime`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, TypeVar

from ledger.domain.errors import DeadlinePassed, InvalidState, ValidationFailed
from ledger.domain.regimes import Regime
from ledger.domain.state import ApplicationState, Deadlines

DeadlineRule = Literal["provider_answer", "own_share_deposit", "completion", "closure"]
DEADLINE_NAMES: Mapping[str, str] = {
    "submission": "the submission window",
    "provider_answer": "the provider's answer",
    "own_share_deposit": "the own share deposit",
    "completion": "the completion",
    "closure": "the closure",
}


def days_after(day: date, days: int) -> date:
    """ "Within N days of day D" means up to and including D + N."""
    return day + timedelta(days=days)


# --------------------------------------------------------------------------- the windows (section 4)


def submission_closes(regime: Regime, starts_on: date) -> date:
    """1. Submitted from the enrolment date up to the service's start date + 14 days."""
    return days_after(starts_on, regime.submission_days_after_start)


def answer_window_closes(regime: Regime, submitted_on: date) -> date:
    """2. The provider confirms or refuses within 14 days of the submission."""
    return days_after(submitted_on, regime.provider_answer_days)


def deposit_window_closes(regime: Regime, counted_from: date) -> date:
    """3. The own share reaches the account within 30 days: of the submission from
    the simplified regime on, of the provider's confirmation in the pillars regime."""
    return days_after(counted_from, regime.deposit_days)


def posting_grace_ends(deadlines: Deadlines) -> date | None:
    """3. A deposit that reached the account in time may be posted up to the
    posting grace after the deadline (bank statements arrive late)."""
    if deadlines.deposit_by is None:
        return None
    return days_after(deadlines.deposit_by, deadlines.posting_grace_days)


def completion_deadline(regime: Regime, application_date: date) -> date:
    """7. The service is finished on or before 31 December of the year after the
    application year (decision: that day itself still counts)."""
    return date(application_date.year + regime.completion_years_after, 12, 31)


def deadlines_at_submission(regime: Regime, submitted_on: date, starts_on: date) -> Deadlines:
    """Every deadline an application gets when it is submitted (the own share's
    only later in the pillars regime, where it counts from the confirmation)."""
    return Deadlines(
        submit_by=submission_closes(regime, starts_on),
        answer_by=answer_window_closes(regime, submitted_on),
        deposit_by=deposit_window_closes(regime, submitted_on) if regime.deposit_before_confirmation else None,
        posting_grace_days=regime.deposit_posting_grace_days,
        complete_by=completion_deadline(regime, submitted_on),
    )


def deposit_deadline_at_confirmation(regime: Regime, confirmed_on: date) -> date | None:
    """The own-share deadline fixed by the confirmation (pillars regime only)."""
    return None if regime.deposit_before_confirmation else deposit_window_closes(regime, confirmed_on)


def check_submission_window(regime: Regime, enrolled_on: date, starts_on: date, today: date) -> None:
    """1. Not before the enrolment, not after the start date + 14 days; and a
    service that starts after its completion deadline could never be finished in time."""
    if enrolled_on > today:
        raise ValidationFailed(f"an application cannot be submitted before the enrolment on {enrolled_on}")
    closes = submission_closes(regime, starts_on)
    if today > closes:
        raise DeadlinePassed(f"applications for a service starting {starts_on} were due by {closes}")
    complete_by = completion_deadline(regime, today)
    if starts_on > complete_by:
        raise ValidationFailed(
            f"starts_on {starts_on} lies after the completion deadline {complete_by} of an application of today"
        )


# --------------------------------------------------------------------------- money still in play


def releasable(application: ApplicationState) -> tuple[int, int]:
    """(own share, subsidy) held for the application and not drawn on by a
    pending payout order: what a closure gives back."""
    pending = application.pending_orders
    return (
        application.held("held_own_share") - sum(o.own_share_part for o in pending),
        application.held("held_subsidy") - sum(o.subsidy_part for o in pending),
    )


def holds_money(application: ApplicationState) -> bool:
    """Money held for the application and not ordered, or recovered and not yet due."""
    own, subsidy = releasable(application)
    return own > 0 or subsidy > 0 or application.held("recovered") > 0


# --------------------------------------------------------------------------- deadlines passed


@dataclass(frozen=True)
class Lapse:
    """A deadline passed unmet: the run records it (a lapse, or a closure)."""

    application_id: str
    rule: str
    deadline: date
    business_date: date
    """The first day after the deadline; never before the application's latest
    event (a payout executed or a recovery repaid after the deadline), so its
    history never goes back in time."""

    @property
    def closes(self) -> bool:
        return self.rule in ("completion", "closure")


def due_lapse(application: ApplicationState, today: date) -> Lapse | None:
    """The deadline ``application`` has passed unmet by ``today``, as the deadline
    run records it: the provider's answer; the own share (only once its posting
    grace passed too); the completion date with money still held and not
    ordered. The earliest wins. An ended application has none."""
    if not application.is_open:
        return None
    deadlines = application.deadlines
    passed: list[tuple[date, str]] = []
    if application.confirmed_on is None and today > deadlines.answer_by:
        passed.append((deadlines.answer_by, "provider_answer"))
    grace_ends = posting_grace_ends(deadlines)
    if grace_ends is not None and application.own_share_received < application.own_share and today > grace_ends:
        passed.append((deadlines.deposit_by, "own_share_deposit"))  # type: ignore[arg-type]
    if today > deadlines.complete_by and holds_money(application):
        passed.append((deadlines.complete_by, "closure" if application.completed_on else "completion"))
    if not passed:
        return None
    deadline, rule = min(passed)
    first_day_after = days_after(deadline, 1)
    latest = application.latest_on
    return Lapse(
        application.application_id,
        rule,
        deadline,
        latest if latest is not None and latest > first_day_after else first_day_after,
    )


D = TypeVar("D", date, str)


def next_deadline_of(
    *,
    ended: bool,
    confirmed: bool,
    own_share_short: bool,
    completed: bool,
    fully_paid_out: bool,
    holds_money: bool,
    answer_by: D,
    deposit_by: D | None,
    complete_by: D,
) -> tuple[str, D] | None:
    """An application's next deadline and the rule behind it: the provider's
    answer (or an earlier own-share deadline) until it is confirmed, then the own
    share while it is short, then the completion; once completed, the closure on
    that same date while money is still held. An ended or paid-out application
    has none. Dates as dates or ISO strings."""
    if ended or fully_paid_out:
        return None
    if not confirmed:
        candidates = [("provider_answer", answer_by)]
        if deposit_by and own_share_short:
            candidates.append(("own_share_deposit", deposit_by))
        return min(candidates, key=lambda item: item[1])
    if own_share_short and deposit_by:
        return "own_share_deposit", deposit_by
    if completed:
        return ("closure", complete_by) if holds_money else None
    return "completion", complete_by


def next_deadline(application: ApplicationState) -> tuple[str, date] | None:
    """:func:`next_deadline_of` an application's state."""
    d = application.deadlines
    return next_deadline_of(
        ended=not application.is_open,
        confirmed=application.confirmed_on is not None,
        own_share_short=application.own_share_received < application.own_share,
        completed=application.completed_on is not None,
        fully_paid_out=application.project_amount > 0 and application.paid_out >= application.project_amount,
        holds_money=application.held_total > 0,
        answer_by=d.answer_by,
        deposit_by=d.deposit_by,
        complete_by=d.complete_by,
    )


# --------------------------------------------------------------------------- which deadline binds which command


@dataclass(frozen=True)
class Facts:
    """What a command brings that a deadline may judge: the bank's value date, the
    day a service was completed."""

    value_date: date | None = None
    completed_on: date | None = None


def _answer_in_time(application: ApplicationState, today: date, facts: Facts) -> None:
    if today > application.deadlines.answer_by:
        raise DeadlinePassed(f"the provider's answer was due by {application.deadlines.answer_by}")


def _own_share_in_time(application: ApplicationState, today: date, facts: Facts) -> None:
    deadline = application.deadlines.deposit_by
    if deadline is None:
        return
    if facts.value_date is not None and facts.value_date > deadline:
        raise DeadlinePassed(
            f"the own share was due by {deadline}; this deposit reached the account on {facts.value_date}"
        )
    grace_ends = posting_grace_ends(application.deadlines)
    if grace_ends is not None and today > grace_ends:
        raise DeadlinePassed(f"the own share was due by {deadline}, and its posting grace ended on {grace_ends}")


def _ordered_by_completion(application: ApplicationState, today: date, facts: Facts) -> None:
    if today > application.deadlines.complete_by:
        raise DeadlinePassed(
            f"no payout order is accepted after the completion deadline {application.deadlines.complete_by}"
        )


def _completed_in_time(application: ApplicationState, today: date, facts: Facts) -> None:
    if facts.completed_on is not None and facts.completed_on > application.deadlines.complete_by:
        raise DeadlinePassed(f"the service had to be finished by {application.deadlines.complete_by}")


Check = Callable[[ApplicationState, date, Facts], None]


@dataclass(frozen=True)
class Binding:
    """How deadlines bind one command on an application."""

    settles: bool
    """Settling what is due (a refund or return executed, a recovery repaid, a
    payout ordered in time executed, a correction): allowed after a deadline
    passed. Every other command moves the application on and is refused once
    any deadline passed unmet."""
    own: str | None = None
    """The deadline the command has besides (its rule in :data:`DEADLINE_NAMES`)."""
    check: Check | None = None


BINDINGS: Mapping[str, Binding] = {
    "confirm": Binding(settles=False, own="provider_answer", check=_answer_in_time),
    "refuse": Binding(settles=False, own="provider_answer", check=_answer_in_time),
    "deposit_own_share": Binding(settles=False, own="own_share_deposit", check=_own_share_in_time),
    "top_up": Binding(settles=False),
    "order_payout": Binding(settles=False, own="completion", check=_ordered_by_completion),
    "complete": Binding(settles=False, own="completion", check=_completed_in_time),
    "stop": Binding(settles=False),
    "execute_payout": Binding(settles=True),
    "repay_recovery": Binding(settles=True),
    "execute_refund": Binding(settles=True),
    "reverse": Binding(settles=True),
}
"""The command x deadline table: every command that moves an application on is
bound by every deadline of it (through :func:`due_lapse`), some by one more of
their own; settling commands by none."""


def check_deadlines(command: str, application: ApplicationState, today: date, facts: Facts = Facts()) -> None:
    """The one guard every command on an application passes: refused with
    ``deadline_passed`` once any deadline passed unmet, exactly as if the deadline
    run had recorded the lapse already; then the command's own deadline."""
    binding = BINDINGS[command]
    if binding.settles:
        return
    lapse = due_lapse(application, today)
    if lapse is not None:
        raise DeadlinePassed(
            f"{DEADLINE_NAMES[lapse.rule]} was due by {lapse.deadline}: the application "
            f"{'is to be closed' if lapse.closes else 'has lapsed'}, so it cannot move on"
        )
    if binding.check is not None:
        binding.check(application, today, facts)


# --------------------------------------------------------------------------- how an application ends


@dataclass(frozen=True)
class CeilingEffect:
    """What an ending does to the ceiling of the application's year."""

    freed: int = 0
    """Reserved (or recovered) subsidy given back to the ceiling."""
    used_returned: int = 0
    """Subsidy paid out and recovered: freed, it no longer counts as used."""
    lost: int = 0
    """Reserved subsidy of an ending in a later year: lost to its year, neither
    reserved nor freed."""


def ending_effect(
    application: ApplicationState, ends_on: date, returned: int = 0, keeps_orders: bool = False
) -> CeilingEffect:
    """An ending pays nothing more out: the subsidy still reserved (minus what
    pending orders kept by a closure still draw on) is freed when the ending falls
    in the application's calendar year, and lost to that year when it falls later.
    ``returned``: subsidy paid out and recovered, freed in the same year only."""
    unspent = application.ceiling_claim - application.paid_subsidy
    if keeps_orders:
        unspent -= sum(o.subsidy_part for o in application.pending_orders)
    unspent = max(unspent, 0)
    if ends_on.year == application.year:
        return CeilingEffect(freed=unspent + returned, used_returned=returned)
    return CeilingEffect(lost=unspent)


# --------------------------------------------------------------------------- stopping a project (section 5)

StopReason = Literal[
    "on_request",
    "enterprise_ceased",
    "provider_ceased",
    "death_or_incapacity",
    "finished_cheaper",
    "provider_cancelled",
    "other",
]
JUSTIFIED_STOP_REASONS = frozenset({"enterprise_ceased", "provider_ceased", "death_or_incapacity", "finished_cheaper"})
"""Reasons that stop a partly paid-out project at once (with their proof)."""

StopOutcome = Literal["stopped", "recovery_from_enterprise", "recovery_from_provider"]


def stop_outcome(application: ApplicationState, reason: str, proof: str | None) -> StopOutcome:
    """5. Nothing paid out: stopped on request. Partly paid out with a justified
    reason and its proof: stopped, the rest refunded. Partly paid out for another
    reason: a recovery of the subsidy paid out from the enterprise first (none
    when no subsidy was paid out). Fully paid out: only the provider's
    cancellation (with proof) stops it, once the provider has repaid."""
    if application.recovery is not None:
        raise InvalidState("a recovery is pending: the project stops once it is repaid")
    if application.paid_out == 0:
        return "stopped"
    if application.paid_subsidy == 0 and reason != "provider_cancelled":
        return "stopped"  # no subsidy paid out (a payout of cents rounds its part down): nothing to recover
    if (reason in JUSTIFIED_STOP_REASONS or reason == "provider_cancelled") and not proof:
        raise ValidationFailed(f"a stop for {reason} after a payout needs its proof document")
    if reason == "provider_cancelled":
        return "recovery_from_provider"
    if application.paid_out == application.project_amount:
        raise InvalidState("fully paid out: only the provider's cancellation (provider_cancelled, with proof) stops it")
    if reason in JUSTIFIED_STOP_REASONS:
        return "stopped"
    return "recovery_from_enterprise"
