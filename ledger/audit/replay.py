"""Replays: a wallet's events folded through the one fold, as of a date, and
the auditor's report of one: a timeline of every event with the amount it moved
and the held balances after it, and the state under the rules in force then.

Each event records the regime, rate and capped subsidy decided when it
happened, so a replay reads no rule table: a wallet replayed in ten years
shows the same amounts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from ledger.domain import events as ev
from ledger.domain.clock import brussels_date
from ledger.domain.fold import apply_event
from ledger.domain.identifiers import canonical_enterprise_number
from ledger.domain.money import format_euro
from ledger.domain.state import AT_FINANCIAL_MANAGER, WalletState
from ledger.summaries import application_summary, balances, rate_percent


def replay_steps(
    events: Iterable[ev.WalletEvent], state: WalletState | None = None
) -> Iterator[tuple[ev.WalletEvent, WalletState]]:
    """Fold events through the one fold (onto ``state``, e.g. from a snapshot)
    without the aggregate's version check, for replays as of a date (a lapse
    dated before later events of other applications is then still applied);
    yields the state after each event."""
    for event in events:
        state = apply_event(state, event)
        yield event, state


def replay_events(events: list[ev.WalletEvent]) -> WalletState | None:
    """The wallet's state after all the given events (see :func:`replay_steps`)."""
    state = None
    for _event, folded in replay_steps(events):
        state = folded
    return state


def wallet_replay(ledger: Any, enterprise_number: str, as_of: date | None = None) -> dict[str, Any]:
    """The wallet's timeline and state as of ``as_of`` (default the ledger clock's
    Brussels date): ``{"enterprise_number", "as_of", "timeline", "state"}``."""
    enterprise = canonical_enterprise_number(enterprise_number)
    as_of = as_of or brussels_date(ledger.clock.now())
    events = ledger.wallet_events(enterprise, as_of)
    state = ledger.replay(enterprise, as_of)
    return {"enterprise_number": enterprise, "as_of": as_of.isoformat(), **replay_report(events, state)}


def replay_report(events: list[Any], state: dict[str, Any]) -> dict[str, Any]:
    """The timeline (one row per event, balances after it) and the state, its
    applications completed with the regime, rate and balances they were decided with."""
    timeline: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    folded = None
    for event, folded in replay_steps(events):
        for leg in getattr(event, "legs", ()):
            if leg.account in AT_FINANCIAL_MANAGER:
                totals[leg.account] = totals.get(leg.account, 0) + leg.amount
        amount, detail = describe(event, folded)
        application = folded.applications.get(getattr(event, "application_id", None) or "")
        timeline.append(
            {
                "sequence": event.originator_version,
                "business_date": event.business_date.isoformat(),
                "recorded_at": event.timestamp.isoformat(),
                "type": type(event).__name__,
                "application_id": application.application_id if application else None,
                "project_number": application.project_number if application else None,
                "amount": None if amount is None else format_euro(amount),
                "detail": detail,
                **balances(totals),
            }
        )
    decided = {}
    if folded is not None:
        for application in folded.applications.values():
            view = application_summary(application)
            decided[application.application_id] = {
                key: view[key]
                for key in ("regime", "amendments", "year", "size", "rate", "eligible_cost", "held", "paid_out", "due")
            }
    state = dict(state)
    state["applications"] = [a | decided.get(a["application_id"], {}) for a in state.get("applications", [])]
    return {"timeline": timeline, "state": state}


def describe(event: Any, state: Any) -> tuple[int | None, str]:
    """The amount an event moved (cents, or None) and one line in the rule book's words."""

    def euro(cents: int) -> str:
        return format_euro(cents)

    if isinstance(event, ev.WalletOpened):
        return None, f"wallet of {event.name}, {event.size} enterprise (figures {event.figures_year})"
    if isinstance(event, ev.SmeFiguresFiled):
        return None, f"SME figures of {event.year} filed: {event.size}"
    if isinstance(event, ev.ContactEmailChanged):
        return None, f"contact e-mail {'changed to ' + event.contact_email if event.contact_email else 'removed'}"
    if isinstance(event, ev.ApplicationSubmitted):
        capped = f", capped by {event.capped_by}" if event.capped_by else ""
        return event.subsidy, (
            f"{event.service} from {event.provider}, regime {event.regime}, rate {rate_percent(event.rate)}%, "
            f"eligible {euro(event.eligible_cost)}, subsidy {euro(event.subsidy)}{capped}, "
            f"own share {euro(event.own_share)}, reference {event.payment_reference}"
        )
    if isinstance(event, ev.ApplicationConfirmed):
        due = f", own share due by {event.deposit_by}" if event.deposit_by else ""
        return None, f"confirmed by the provider{due}"
    if isinstance(event, ev.EventReversed):
        return _moved_out(event), f"reverses event {event.reversed_sequence} ({event.reversed_type}): {event.reason}"
    if isinstance(event, ev.Ending):
        why = {
            ev.ApplicationRefused: lambda e: f"refused by the provider: {e.reason}",
            ev.ApplicationLapsed: lambda e: f"lapsed: {e.rule} deadline {e.deadline} passed",
            ev.ProjectClosed: lambda e: f"closed: {e.rule} deadline {e.deadline} passed",
            ev.ProjectStopped: lambda e: f"stopped: {e.reason}",
        }[type(event)](event)
        freed = f", ceiling freed {euro(event.ceiling_freed)}" if event.ceiling_freed else ""
        return _moved_out(event), f"{why}; held money falls due{freed}"
    if isinstance(event, ev.OwnShareDeposited):
        return event.amount, f"own share received, reference {event.payment_reference}, value date {event.value_date}"
    if isinstance(event, ev.SubsidyToppedUp):
        return event.amount, f"subsidy received from the government, value date {event.value_date}"
    if isinstance(event, ev.PayoutOrdered):
        return event.amount, (
            f"payout ordered: own share part {euro(event.own_share_part)}, subsidy part {euro(event.subsidy_part)}"
        )
    if isinstance(event, ev.PayoutExecuted):
        return event.amount, f"paid to the provider, value date {event.value_date}"
    if isinstance(event, ev.RecoveryIssued):
        return event.amount, f"recovery issued to the {event.debtor}: {event.reason}"
    if isinstance(event, ev.RecoveryRepaid):
        return event.amount, f"recovery repaid, value date {event.value_date}"
    if isinstance(event, ev.RefundExecuted):
        return event.amount, f"{event.kind.replace('_', ' ')}, value date {event.value_date}"
    if isinstance(event, ev.ServiceCompleted):
        return None, f"service completed on {event.completed_on}"
    return None, ""


def _moved_out(event: Any) -> int | None:
    moved = sum(leg.amount for leg in event.legs if leg.amount > 0)
    return moved or None
