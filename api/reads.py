"""Reads across wallets, folded straight from the wallets' events for now.

One function per read, each returning JSON-ready rows, so each can later be
answered from the read models in ``projections/`` without touching a router.
Each folds its own copy of a wallet (from the stored events), so a read never
shares state with a command running at the same time.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any, Iterator

from ledger import events as ev
from ledger.application import KmoLedger, replay_events
from ledger.clock import brussels_date
from ledger.money import format_euro
from ledger.rules import retain_until
from ledger.state import ApplicationState, WalletState, account_kind
from ledger.views import next_deadline

RECORD_RETENTION_YEARS = 5
"""RULES.md §7: a record of no application is kept at least 5 years after it was recorded."""


def today(ledger: KmoLedger) -> date:
    return brussels_date(ledger.clock.now())


def _wallets(ledger: KmoLedger) -> Iterator[tuple[WalletState, list[ev.WalletEvent]]]:
    """Every wallet that ever had an application, folded from its events."""
    for aggregate_id in ledger.wallet_ids_with_applications():
        events = list(ledger.events.get(aggregate_id))
        if events:
            yield replay_events(events).state, events


def _applications(ledger: KmoLedger) -> Iterator[tuple[str, ApplicationState]]:
    for state, _events in _wallets(ledger):
        for application in state.applications.values():
            yield state.enterprise_number, application


def upcoming_deadlines(ledger: KmoLedger, within_days: int) -> list[dict[str, Any]]:
    """Open applications whose next deadline falls within ``within_days`` (or has
    passed and awaits the deadline run), soonest first."""
    now = today(ledger)
    horizon = now + timedelta(days=within_days)
    rows = []
    for enterprise_number, application in _applications(ledger):
        deadline = next_deadline(application)
        if deadline is None:
            continue
        on = date.fromisoformat(deadline["date"])
        if on <= horizon:
            rows.append(
                {
                    "enterprise_number": enterprise_number,
                    "application_id": application.application_id,
                    "project_number": application.project_number,
                    "provider": application.provider,
                    "state": application.state,
                    "rule": deadline["rule"],
                    "deadline": on,
                    "days_left": (on - now).days,
                }
            )
    return sorted(rows, key=lambda row: (row["deadline"], row["project_number"]))


def provider_inbox(ledger: KmoLedger, provider: str) -> list[dict[str, Any]]:
    """Applications naming ``provider`` that await its answer and may still get it."""
    now = today(ledger)
    rows = []
    for enterprise_number, application in _applications(ledger):
        if (
            application.provider == provider
            and application.is_open
            and application.confirmed_on is None
            and now <= application.deadlines.answer_by
        ):
            rows.append(
                {
                    "enterprise_number": enterprise_number,
                    "application_id": application.application_id,
                    "project_number": application.project_number,
                    "service": application.service,
                    "themes": list(application.themes),
                    "starts_on": application.starts_on,
                    "submitted_on": application.submitted_on,
                    "answer_by": application.deadlines.answer_by,
                    "project_amount": format_euro(application.project_amount),
                }
            )
    return sorted(rows, key=lambda row: (row["answer_by"], row["project_number"]))


def open_payout_orders(ledger: KmoLedger, overdue_only: bool) -> list[dict[str, Any]]:
    """Payout orders not executed (nor cancelled); overdue once older than the
    promised service level (14 days after the order)."""
    now = today(ledger)
    rows = []
    for enterprise_number, application in _applications(ledger):
        for order in application.pending_orders:
            due_by = order.ordered_on + timedelta(days=application.payout_service_days)
            overdue = now > due_by
            if overdue or not overdue_only:
                rows.append(
                    {
                        "enterprise_number": enterprise_number,
                        "application_id": application.application_id,
                        "project_number": application.project_number,
                        "provider": application.provider,
                        "order_id": order.order_id,
                        "amount": format_euro(order.amount),
                        "ordered_on": order.ordered_on,
                        "due_by": due_by,
                        "age_days": (now - order.ordered_on).days,
                        "overdue": overdue,
                    }
                )
    return sorted(rows, key=lambda row: (row["ordered_on"], row["order_id"]))


def audit_trail(ledger: KmoLedger, enterprise_number: str) -> list[dict[str, Any]]:
    """Every event of the wallet with its money legs and how long it is kept: an
    application's records ``retention_years`` after its application date; a
    record of no application as long as the longest-kept application, and at
    least five years after it was recorded."""
    events = ledger.wallet_events(enterprise_number)
    state = replay_events(events).state
    kept = {
        application.application_id: retain_until(application.retention_years, application.submitted_on)
        for application in state.applications.values()
    }
    longest = max(kept.values(), default=None)
    rows = []
    for event in events:
        application_id = getattr(event, "application_id", None)
        if application_id is not None:
            until = kept[application_id]
        else:
            until = retain_until(RECORD_RETENTION_YEARS, event.business_date)
            if longest is not None:
                until = max(until, longest)
        rows.append(
            {
                "sequence": event.originator_version,
                "type": type(event).__name__,
                "business_date": event.business_date,
                "recorded_at": event.timestamp.isoformat(),
                "actor": event.actor.model_dump(),
                "application_id": application_id,
                "legs": [leg.model_dump(mode="json") for leg in getattr(event, "legs", ())],
                "hash": event.hash,
                "retain_until": until,
            }
        )
    return rows


def money_totals(ledger: KmoLedger, start: date | None, end: date | None) -> list[dict[str, Any]]:
    """Money in and out per account kind and day: a receipt counts on the bank's
    value date, any other money event on its business date."""
    totals: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0])
    for _state, events in _wallets(ledger):
        for event in events:
            legs = getattr(event, "legs", ())
            if not legs:
                continue
            day = getattr(event, "value_date", None) or event.business_date
            if (start and day < start) or (end and day > end):
                continue
            for leg in legs:
                slot = totals[(day, account_kind(leg.account))]
                if leg.amount >= 0:
                    slot[0] += leg.amount
                else:
                    slot[1] -= leg.amount
    return [
        {
            "date": day,
            "account_kind": kind,
            "in": format_euro(money_in),
            "out": format_euro(money_out),
            "net": format_euro(money_in - money_out),
        }
        for (day, kind), (money_in, money_out) in sorted(totals.items())
    ]
