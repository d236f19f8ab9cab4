"""Reconciliation (afstemming): the entries of a bank statement matched against
the ledger's money events, in euro cents.

The ledger's side are its postings: every own-share deposit, government
top-up and recovery repayment (money in), every payout to a provider and every
refund or return (money out), read from the notification log; events that a
reversal (``EventReversed``) undid are left out. Matching:

- a credit with a structured reference matches the own-share deposit of the
  application with that reference, or a government top-up or recovery
  repayment of that application;
- any other credit matches a top-up or repayment of the same amount and value
  date; a debit matches a payout to a provider or a refund or return of the
  same amount and value date. A remittance that names the application (its
  reference or project number) decides between equal candidates, and pairs a
  statement entry with its ledger event even when amount or date differ;
- a credit that no ledger event explains and that went back (a debit of the
  same amount and reference, or a bank reversal) is reported as returned.

Reported: matched pairs; amount differences; statement entries with no ledger
event (a deposit refused for a wrong reference stays here: return it to the
payer); ledger events with no statement entry within the statement's period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

from ledger.domain import events as ev
from ledger.domain.identifiers import compact_payment_reference
from ledger.domain.money import format_euro, parse_euro
from ledger.reconciliation.statements import Entry, Statement, written_reference
from ledger.storage.log import notifications
from ledger.storage.topics import stored_topic

if TYPE_CHECKING:
    from ledger.application import KmoLedger

CREDIT_EVENTS = ("OwnShareDeposited", "SubsidyToppedUp", "RecoveryRepaid")
DEBIT_EVENTS = ("PayoutExecuted", "RefundExecuted")


# ---------------------------------------------------------------------- the ledger's side


@dataclass
class Posting:
    """A ledger money event that reached or left the financial manager's account."""

    enterprise_number: str
    wallet_id: UUID
    sequence: int
    type: str
    application_id: str
    project_number: str
    reference: str | None
    direction: str
    amount: int
    value_date: date
    kind: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "enterprise_number": self.enterprise_number,
            "sequence": self.sequence,
            "type": self.type,
            "application_id": self.application_id,
            "project_number": self.project_number,
            "payment_reference": written_reference(self.reference) if self.reference else None,
            "direction": self.direction,
            "amount": format_euro(self.amount),
            "value_date": self.value_date.isoformat(),
            "kind": self.kind,
        }

    def named_in(self, entry: Entry) -> bool:
        """Whether the entry's remittance names this posting's application."""
        if self.reference and entry.reference == self.reference:
            return True
        text = entry.description
        return bool(text) and (
            self.project_number in text or (self.reference is not None and self.reference in re.sub(r"\D", "", text))
        )


def ledger_postings(ledger: KmoLedger, start: date, end: date) -> list[Posting]:
    """Money events with a value date from ``start`` to ``end``, reversed ones left out."""
    topics = [stored_topic(ev.EVENT_TYPES[name]) for name in CREDIT_EVENTS + DEBIT_EVENTS + ("EventReversed",)]
    wallets: dict[UUID, Any] = {}
    reversed_events: set[tuple[UUID, int]] = set()
    postings: list[Posting] = []
    for notification in notifications(ledger, topics):
        state = orjson.loads(notification.state)
        type_name = notification.topic.rsplit(":", 1)[-1]
        if type_name == "EventReversed":
            reversed_events.add((notification.originator_id, int(state["reversed_sequence"])))
            continue
        value_date = date.fromisoformat(state["value_date"])
        if not start <= value_date <= end:
            continue
        wallet = wallets.get(notification.originator_id)
        if wallet is None:
            wallet = wallets[notification.originator_id] = ledger.wallet_state(notification.originator_id)
        application = wallet.applications.get(state["application_id"])

        postings.append(
            Posting(
                enterprise_number=wallet.enterprise_number,
                wallet_id=notification.originator_id,
                sequence=notification.originator_version,
                type=type_name,
                application_id=state["application_id"],
                project_number=application.project_number if application else "",
                reference=compact_payment_reference(application.payment_reference) if application else None,
                direction="credit" if type_name in CREDIT_EVENTS else "debit",
                amount=parse_euro(state["amount"]),
                value_date=value_date,
                kind=state.get("kind"),
            )
        )
    return [p for p in postings if (p.wallet_id, p.sequence) not in reversed_events]


# ---------------------------------------------------------------------- matching


@dataclass
class Reconciliation:
    statement: Statement
    matched: list[dict[str, Any]] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    returned: list[dict[str, Any]] = field(default_factory=list)
    unmatched_statement: list[dict[str, Any]] = field(default_factory=list)
    unmatched_ledger: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.differences or self.unmatched_statement or self.unmatched_ledger)


def reconcile(statement: Statement, postings: list[Posting], owner_of=lambda reference: None) -> Reconciliation:
    """Match statement entries and postings; ``owner_of(reference)`` names the
    application a structured reference was given to (for the unmatched report)."""
    result = Reconciliation(statement)
    open_entries = [e for e in statement.entries if e.currency == "EUR"]
    for entry in statement.entries:
        if entry.currency != "EUR":
            result.unmatched_statement.append(
                {"entry": entry.as_dict(), "reason": f"in {entry.currency}: the wallets are kept in euro"}
            )
    open_postings = list(postings)

    def pair(entry: Entry, posting: Posting) -> None:
        open_entries.remove(entry)
        open_postings.remove(posting)
        if entry.amount != posting.amount:
            result.differences.append(
                {
                    "kind": "amount",
                    "entry": entry.as_dict(),
                    "event": posting.as_dict(),
                    "difference": format_euro(entry.amount - posting.amount),
                    "reason": f"the bank shows {format_euro(entry.amount)}, the ledger "
                    f"{format_euro(posting.amount)} ({posting.type} {posting.sequence} of {posting.enterprise_number})",
                }
            )
            return
        note = None
        if entry.value_date != posting.value_date:
            note = f"value date {entry.value_date} on the statement, {posting.value_date} in the ledger"
        result.matched.append({"entry": entry.as_dict(), "event": posting.as_dict(), "note": note})

    def candidates(entry: Entry) -> list[Posting]:
        return [p for p in open_postings if p.direction == entry.direction]

    def best(options: list[Posting], entry: Entry) -> Posting | None:
        """Prefer the posting the remittance names, then the same value date, then
        the nearest amount, then an own-share deposit, then the nearest date."""
        if not options:
            return None
        return min(
            options,
            key=lambda p: (
                not p.named_in(entry),
                p.value_date != entry.value_date,
                abs(p.amount - entry.amount),
                p.type != "OwnShareDeposited",
                abs((p.value_date - entry.value_date).days),
                p.sequence,
            ),
        )

    # 1. credits with a structured reference: that application's money in, same amount
    for entry in [e for e in open_entries if e.direction == "credit" and e.reference]:
        same = [p for p in candidates(entry) if p.reference == entry.reference and p.amount == entry.amount]
        chosen = best(same, entry)
        if chosen:
            pair(entry, chosen)
    # 2. the same amount on the same value date, the remittance deciding between equals
    for entry in list(open_entries):
        exact = [
            p
            for p in candidates(entry)
            if p.amount == entry.amount
            and p.value_date == entry.value_date
            and (entry.reference is None or p.reference == entry.reference)
        ]
        chosen = best(exact, entry)
        if chosen:
            pair(entry, chosen)
    # 3. a remittance that names the application (its reference or project number)
    #    pairs what is left with the nearest of its postings: amount or date differ
    for entry in list(open_entries):
        chosen = best([p for p in candidates(entry) if p.named_in(entry)], entry)
        if chosen:
            pair(entry, chosen)

    # 4. money that came in unexplained and went back to the payer
    def sends_back(debit: Entry, credit: Entry) -> bool:
        if debit.direction != "debit" or debit.amount != credit.amount or debit.value_date < credit.value_date:
            return False
        reference = credit.reference or credit.reference_text
        return debit.reversal or (reference is not None and reference in (debit.reference, debit.reference_text))

    for credit in [e for e in open_entries if e.direction == "credit"]:
        back = next((d for d in open_entries if sends_back(d, credit)), None)
        if back is not None:
            open_entries.remove(credit)
            open_entries.remove(back)
            result.returned.append({"entry": credit.as_dict(), "return": back.as_dict()})
    for entry in open_entries:
        result.unmatched_statement.append({"entry": entry.as_dict(), "reason": _why_unmatched(entry, owner_of)})
    start, end = statement.period_from, statement.period_to
    for posting in open_postings:
        if (start is None or posting.value_date >= start) and (end is None or posting.value_date <= end):
            result.unmatched_ledger.append(
                {
                    "event": posting.as_dict(),
                    "reason": f"{posting.type} {posting.sequence} of {posting.enterprise_number} "
                    f"({posting.project_number}) has no statement entry",
                }
            )
    return result


def _why_unmatched(entry: Entry, owner_of) -> str:
    if entry.direction == "debit":
        return "no payout, refund or return in the ledger for this debit"
    if entry.reference:
        owner = owner_of(entry.reference)
        if owner is None:
            return f"reference {written_reference(entry.reference)} belongs to no application: return to payer"
        return (
            f"reference {written_reference(entry.reference)} is application {owner.application_id} of "
            f"{owner.enterprise_number}, which has no matching deposit: post it if it is right, else return to payer"
        )
    if entry.reference_text:
        return f"structured reference {entry.reference_text!r} is not valid (check digits): return to payer"
    return "no ledger event explains this credit: return to payer"


# ---------------------------------------------------------------------- the report


def as_report(result: Reconciliation) -> dict[str, Any]:
    """The reconciliation as plain data: the statement's summary and every finding
    (what ``--json`` prints and the human tables are drawn from)."""
    statement = result.statement
    return {
        "ok": result.ok,
        "statement": {
            "file": statement.source,
            "format": statement.format,
            "from": statement.period_from.isoformat() if statement.period_from else None,
            "to": statement.period_to.isoformat() if statement.period_to else None,
            "entries": len(statement.entries),
            "not_booked": statement.skipped,
            "credits": format_euro(sum(e.amount for e in statement.entries if e.direction == "credit")),
            "debits": format_euro(sum(e.amount for e in statement.entries if e.direction == "debit")),
        },
        "matched": result.matched,
        "differences": result.differences,
        "returned": result.returned,
        "unmatched_statement": result.unmatched_statement,
        "unmatched_ledger": result.unmatched_ledger,
    }
