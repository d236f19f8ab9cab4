"""Read shapes of a wallet and an application, as the API and the tools show them
(money as two-decimal euro strings, dates in ISO form)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from ledger.domain import lifecycle
from ledger.domain.errors import LedgerError
from ledger.domain.money import format_euro
from ledger.domain.regimes import rules_in_force
from ledger.domain.state import ApplicationState, WalletState


def rate_percent(basis_points: int) -> str:
    return f"{basis_points // 100}.{basis_points % 100:02d}"


def next_deadline(application: ApplicationState) -> dict[str, Any] | None:
    """The application's next deadline and the rule behind it (:func:`ledger.domain.lifecycle.next_deadline`)."""
    found = lifecycle.next_deadline(application)
    return None if found is None else {"rule": found[0], "date": found[1].isoformat()}


AMOUNTS = (
    "eligible_cost",
    "non_eligible_cost",
    "subsidy",
    "own_share",
    "project_amount",
    "own_share_received",
    "subsidy_received",
)
"""The application's amounts shown under their own names."""


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def application_summary(application: ApplicationState) -> dict[str, Any]:
    a = application
    grace_ends = lifecycle.posting_grace_ends(a.deadlines)
    recovery = None
    if a.recovery is not None:
        recovery = {
            "debtor": a.recovery.debtor,
            "amount": format_euro(a.recovery.amount),
            "repaid": format_euro(a.recovery.repaid),
            "outstanding": format_euro(a.recovery.amount - a.recovery.repaid),
            "reason": a.recovery.reason,
        }
    return {
        "application_id": a.application_id,
        "project_number": a.project_number,
        "payment_reference": a.payment_reference,
        "state": a.state,
        "regime": a.regime,
        "amendments": list(a.amendments),
        "service": a.service,
        "provider": a.provider,
        "themes": list(a.themes),
        "enrolled_on": a.enrolled_on.isoformat(),
        "starts_on": a.starts_on.isoformat(),
        "submitted_on": a.submitted_on.isoformat(),
        "year": a.year,
        "size": a.size,
        "rate": rate_percent(a.rate),
        "cost_lines": [line.model_dump(mode="json") for line in a.costs],
        **{name: format_euro(getattr(a, name)) for name in AMOUNTS},
        **balances(a.balances),
        "paid_out": {
            "own_share": format_euro(a.paid_own_share),
            "subsidy": format_euro(a.paid_subsidy),
            "total": format_euro(a.paid_out),
        },
        "ordered_not_executed": format_euro(a.pending_total),
        "refunded": {
            "own_share_to_enterprise": format_euro(a.refunded_own_share),
            "subsidy_to_government": format_euro(a.returned_subsidy),
        },
        "recovery": recovery,
        "ceiling_claim": format_euro(a.ceiling_claim),
        "ceiling_freed": format_euro(a.freed),
        "ceiling_lost": format_euro(a.lost),
        "deadlines": {
            "submit_by": a.deadlines.submit_by.isoformat(),
            "answer_by": a.deadlines.answer_by.isoformat(),
            "deposit_by": _iso(a.deadlines.deposit_by),
            "deposit_posted_by": _iso(grace_ends),
            "complete_by": a.deadlines.complete_by.isoformat(),
        },
        "next_deadline": next_deadline(a),
        "confirmed_on": _iso(a.confirmed_on),
        "completed_on": _iso(a.completed_on),
        "ended_on": _iso(a.final_on),
        "end_reason": a.final_reason,
        "payout_orders": [
            {
                "order_id": o.order_id,
                "amount": format_euro(o.amount),
                "own_share_part": format_euro(o.own_share_part),
                "subsidy_part": format_euro(o.subsidy_part),
                "ordered_on": o.ordered_on.isoformat(),
                "executed_on": _iso(o.executed_on),
                "value_date": _iso(o.value_date),
                "state": "cancelled" if o.cancelled else ("executed" if o.executed_on else "ordered"),
            }
            for o in a.orders.values()
        ],
    }


def account_totals(applications: Iterable[ApplicationState]) -> dict[str, int]:
    """Money at the financial manager per account, over the given applications."""
    totals: dict[str, int] = {}
    for application in applications:
        for account, amount in application.balances.items():
            totals[account] = totals.get(account, 0) + amount
    return totals


def balances(totals: Mapping[str, int]) -> dict[str, dict[str, str]]:
    """Held and due money of a wallet, from its per-account totals."""
    return {
        "held": {
            "own_share": format_euro(totals.get("held_own_share", 0)),
            "subsidy": format_euro(totals.get("held_subsidy", 0)),
        },
        "due": {
            "enterprise": format_euro(totals.get("due_enterprise", 0)),
            "government": format_euro(totals.get("due_government", 0)),
        },
    }


def wallet_summary(state: WalletState, version: int, on: date) -> dict[str, Any]:
    """The wallet as the API shows it; ``on`` decides which year's size and ceiling
    are shown when no application has fixed them yet."""
    sizes = {str(year): size for year, size in sorted(state.sizes.items())}
    if str(on.year) not in sizes and state.figures_size != "large":
        sizes[str(on.year)] = state.figures_size
    ceilings = [
        {
            "year": c.year,
            "key": c.key,
            "ceiling": format_euro(c.ceiling),
            "reserved": format_euro(c.reserved),
            "used": format_euro(c.used),
            "freed": format_euro(c.freed),
            "lost": format_euro(c.lost),
            "remaining": format_euro(c.remaining),
        }
        for c in sorted(state.ceilings.values(), key=lambda c: (c.year, c.key))
    ]
    if not any(c["year"] == on.year for c in ceilings) and str(on.year) in sizes:
        try:
            regime = rules_in_force(on)
        except LedgerError:
            regime = None
        for rule in regime.ceilings if regime else ():
            amount = format_euro(rule.amount(sizes[str(on.year)]))
            ceilings.append(
                {
                    "year": on.year,
                    "key": rule.key,
                    "ceiling": amount,
                    "reserved": "0.00",
                    "used": "0.00",
                    "freed": "0.00",
                    "lost": "0.00",
                    "remaining": amount,
                }
            )
    applications = state.applications.values()
    return {
        "enterprise_number": state.enterprise_number,
        "name": state.name,
        "contact_email": state.contact_email,
        "opened_on": state.opened_on.isoformat(),
        "sizes": sizes,
        **balances(account_totals(applications)),
        "ceilings": ceilings,
        "applications": [
            {
                "application_id": a.application_id,
                "project_number": a.project_number,
                "state": a.state,
                "service": a.service,
                "provider": a.provider,
                "subsidy": format_euro(a.subsidy),
                "own_share": format_euro(a.own_share),
                "submitted_on": a.submitted_on.isoformat(),
            }
            for a in applications
        ],
        "version": version,
    }
