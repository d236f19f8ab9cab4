"""Which notices an event makes: a pure function of the event, the wallet's
state and the provider directory. Commands never write a notice.

A notice goes to one party (the enterprise or the provider) over one channel
(e-mail or webhook). Its id is a UUID 5 of where it comes from (the event, or
for a reminder the application, deadline and offset), its type, its party and
its channel: derived again after a crash it is the same notice, so a receiver
drops duplicates by id and the store keeps one row per notice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ledger.domain import events as ev
from ledger.domain.money import format_euro
from ledger.domain.regimes import rules_in_force
from ledger.domain.state import ApplicationState, WalletState

NAMESPACE = uuid.UUID("0f6e8d4e-3a55-5c0f-9b1e-4b6d2f1e7a20")
ENTERPRISE, PROVIDER = "enterprise", "provider"
OWN_SHARE, ANSWER = "own_share", "answer"
"""The two deadlines a reminder is sent before: the own-share deposit (to the
enterprise) and the provider's answer (to the provider)."""

TYPES = (
    "payment_instructions",
    "own_share_reminder",
    "own_share_received",
    "subsidy_topped_up",
    "payout_ordered",
    "payout_executed",
    "application_lapsed",
    "application_refused",
    "project_closed",
    "project_stopped",
    "recovery_issued",
    "application_awaiting_confirmation",
    "answer_reminder",
)


@dataclass(frozen=True)
class ProviderEntry:
    """A provider in the directory: where its notices go (the secret stays in the store)."""

    number: str
    name: str
    email: str | None = None
    webhook_url: str | None = None


Directory = Callable[[str], ProviderEntry | None]


@dataclass(frozen=True)
class Notice:
    id: str
    type: str
    party: str
    recipient: str
    """The enterprise number or the provider's registration number."""
    channel: str
    address: str | None
    """The e-mail address or webhook URL; None: nobody known (kept undeliverable)."""
    enterprise_number: str
    application_id: str | None
    source: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Account:
    """The financial manager's account the own share is paid into."""

    iban: str
    name: str


def notice_id(source: str, type_: str, party: str, recipient: str, channel: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{source}|{type_}|{party}:{recipient}|{channel}"))


def channels(party: str, recipient: str, state: WalletState, directory: Directory) -> list[tuple[str, str | None]]:
    """(channel, address) pairs a party is reached by now; ``[("email", None)]``
    when nobody is known, so the notice is kept as undeliverable."""
    if party == ENTERPRISE:
        return [("email", state.contact_email)]
    entry = directory(recipient)
    found: list[tuple[str, str | None]] = []
    if entry is not None and entry.webhook_url:
        found.append(("webhook", entry.webhook_url))
    if entry is not None and entry.email:
        found.append(("email", entry.email))
    return found or [("email", None)]


def address_now(
    party: str, recipient: str, channel: str, state: WalletState | None, directory: Directory
) -> str | None:
    """Where a notice of this party and channel goes today (for a retry or a redelivery)."""
    if party == ENTERPRISE:
        return state.contact_email if state is not None else None
    entry = directory(recipient)
    if entry is None:
        return None
    return entry.webhook_url if channel == "webhook" else entry.email


def _facts(state: WalletState, application: ApplicationState, directory: Directory) -> dict[str, Any]:
    entry = directory(application.provider)
    return {
        "enterprise_number": state.enterprise_number,
        "enterprise_name": state.name,
        "application_id": application.application_id,
        "project_number": application.project_number,
        "service": application.service,
        "provider": application.provider,
        "provider_name": entry.name if entry is not None else None,
        "subsidy": format_euro(application.subsidy),
        "own_share": format_euro(application.own_share),
        "project_amount": format_euro(application.project_amount),
        "payment_reference": application.payment_reference,
    }


def _to(
    parties: Iterable[str],
    type_: str,
    source: str,
    state: WalletState,
    application: ApplicationState,
    directory: Directory,
    data: dict[str, Any],
) -> list[Notice]:
    notices = []
    content = _facts(state, application, directory) | data
    for party in parties:
        recipient = state.enterprise_number if party == ENTERPRISE else application.provider
        for channel, address in channels(party, recipient, state, directory):
            notices.append(
                Notice(
                    id=notice_id(source, type_, party, recipient, channel),
                    type=type_,
                    party=party,
                    recipient=recipient,
                    channel=channel,
                    address=address,
                    enterprise_number=state.enterprise_number,
                    application_id=application.application_id,
                    source=source,
                    data=content,
                )
            )
    return notices


def _due(legs: Iterable[Any]) -> dict[str, str]:
    """What an ending makes due: to the enterprise and back to the government."""
    due = {"due_enterprise": 0, "due_government": 0}
    for leg in legs:
        if leg.account in due and leg.amount > 0:
            due[leg.account] += leg.amount
    return {
        "refund_to_enterprise": format_euro(due["due_enterprise"]),
        "back_to_government": format_euro(due["due_government"]),
    }


def _payment(application: ApplicationState, account: Account, deposit_by: date) -> dict[str, Any]:
    outstanding = max(application.own_share - application.own_share_received, 0)
    return {
        "amount": format_euro(outstanding if application.own_share_received else application.own_share),
        "account_iban": account.iban,
        "account_name": account.name,
        "deposit_by": deposit_by.isoformat(),
    }


def event_source(event: ev.WalletEvent) -> str:
    return f"{event.originator_id}/{event.originator_version}"


def notices_for(event: ev.WalletEvent, state: WalletState, directory: Directory, account: Account) -> list[Notice]:
    """The notices ``event`` makes, worded from the event and the wallet's
    ``state`` (its applications' fixed facts: project number, reference, amounts)."""
    application_id = getattr(event, "application_id", None)
    if application_id is None or application_id not in state.applications:
        return []
    application = state.applications[application_id]
    source = event_source(event)

    def to(*parties: str, type_: str, **data: Any) -> list[Notice]:
        return _to(parties, type_, source, state, application, directory, data)

    if isinstance(event, ev.ApplicationSubmitted):
        found = to(PROVIDER, type_="application_awaiting_confirmation", answer_by=event.deadlines.answer_by.isoformat())
        if event.deadlines.deposit_by is not None:
            payment = _payment(application, account, event.deadlines.deposit_by) | {
                "amount": format_euro(event.own_share)
            }
            found += to(ENTERPRISE, type_="payment_instructions", **payment)
        return found
    if isinstance(event, ev.ApplicationConfirmed):
        if event.deposit_by is None:  # the deadline ran from the submission: instructions went out then
            return []
        return to(ENTERPRISE, type_="payment_instructions", **_payment(application, account, event.deposit_by))
    if isinstance(event, ev.OwnShareDeposited):
        return to(
            ENTERPRISE,
            type_="own_share_received",
            amount=format_euro(event.amount),
            value_date=event.value_date.isoformat(),
            outstanding=format_euro(max(application.own_share - application.own_share_received, 0)),
        )
    if isinstance(event, ev.SubsidyToppedUp):
        return to(
            ENTERPRISE,
            type_="subsidy_topped_up",
            amount=format_euro(event.amount),
            value_date=event.value_date.isoformat(),
        )
    if isinstance(event, ev.PayoutOrdered):
        return to(
            PROVIDER,
            type_="payout_ordered",
            order_id=event.order_id,
            amount=format_euro(event.amount),
            payout_days=rules_in_force(application.submitted_on).payout_service_days,
        )
    if isinstance(event, ev.PayoutExecuted):
        return to(
            ENTERPRISE,
            PROVIDER,
            type_="payout_executed",
            order_id=event.order_id,
            amount=format_euro(event.amount),
            value_date=event.value_date.isoformat(),
        )
    if isinstance(event, ev.ApplicationLapsed):
        return to(
            ENTERPRISE,
            type_="application_lapsed",
            rule=event.rule,
            deadline=event.deadline.isoformat(),
            answer_days=rules_in_force(application.submitted_on).provider_answer_days,
            **_due(event.legs),
        )
    if isinstance(event, ev.ProjectClosed):
        return to(
            ENTERPRISE, type_="project_closed", rule=event.rule, deadline=event.deadline.isoformat(), **_due(event.legs)
        )
    if isinstance(event, ev.ApplicationRefused):
        return to(ENTERPRISE, type_="application_refused", reason=event.reason, **_due(event.legs))
    if isinstance(event, ev.ProjectStopped):
        return to(ENTERPRISE, PROVIDER, type_="project_stopped", reason=event.reason, **_due(event.legs))
    if isinstance(event, ev.RecoveryIssued):
        parties = (ENTERPRISE, PROVIDER) if event.debtor == PROVIDER else (ENTERPRISE,)
        return to(
            *parties,
            type_="recovery_issued",
            debtor=event.debtor,
            amount=format_euro(event.amount),
            reason=event.reason,
            account_iban=account.iban,
            account_name=account.name,
        )
    return []


# --------------------------------------------------------------------------- reminders


def deadlines_of(event: ev.WalletEvent) -> list[tuple[str, date]]:
    """The deadlines a reminder may be due before that ``event`` sets (kind, date)."""
    if isinstance(event, ev.ApplicationSubmitted):
        found = [(ANSWER, event.deadlines.answer_by)]
        if event.deadlines.deposit_by is not None:
            found.append((OWN_SHARE, event.deadlines.deposit_by))
        return found
    if isinstance(event, ev.ApplicationConfirmed) and event.deposit_by is not None:
        return [(OWN_SHARE, event.deposit_by)]
    return []


def unmet(application: ApplicationState, kind: str) -> bool:
    """Whether the deadline of ``kind`` still waits on someone: the application is
    open and the own share is short, or the provider has not answered."""
    if not application.is_open:
        return False
    if kind == OWN_SHARE:
        return application.own_share_received < application.own_share
    return application.confirmed_on is None


REMINDED = {"own_share_reminder": OWN_SHARE, "answer_reminder": ANSWER}
"""The reminders, and the deadline each is about."""


def still_to_remind(state: WalletState, notice: Notice, today: date) -> bool:
    """Whether a reminder made earlier may still be sent ``today``: its deadline
    has not passed and still waits on someone. A retry or a redelivery asks this
    again before sending, so a reminder never reaches anyone once it is met."""
    application = state.applications.get(notice.application_id or "")
    deadline = date.fromisoformat(str(notice.data["deadline"]))
    return application is not None and today <= deadline and unmet(application, REMINDED[notice.type])


def due_offset(deadline: date, today: date, offsets: Iterable[int]) -> int | None:
    """The reminder due ``today`` before ``deadline``: the nearest offset whose day
    has come (a notifier that was down sends the latest one only), None when
    none has or the deadline has passed."""
    come = [offset for offset in offsets if deadline - timedelta(days=offset) <= today <= deadline]
    return min(come) if come else None


def reminders(
    state: WalletState,
    application_id: str,
    kind: str,
    deadline: date,
    today: date,
    offsets: Iterable[int],
    directory: Directory,
    account: Account,
) -> list[Notice] | None:
    """The reminder due today before the application's ``kind`` deadline, if any;
    None once none can be due any more (the deadline met or passed). Its id
    names the application, deadline and offset: sent once per offset however
    often this is asked."""
    application = state.applications.get(application_id)
    if application is None or deadline < today or not unmet(application, kind):
        return None
    offset = due_offset(deadline, today, offsets)
    if offset is None:
        return []
    source = f"{application_id}/{kind}/{deadline.isoformat()}/{offset}"
    data = {"deadline": deadline.isoformat(), "days_before": offset}
    if kind == OWN_SHARE:
        data |= _payment(application, account, deadline)
        return _to((ENTERPRISE,), "own_share_reminder", source, state, application, directory, data)
    return _to((PROVIDER,), "answer_reminder", source, state, application, directory, data)
