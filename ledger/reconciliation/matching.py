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

Only booked euro entries are matched, and never a reversal (RvslInd): the
bank undoing a booking is not settled money. The postings are indexed (by
reference and amount, by amount and value date, by the reference and project
number a remittance names), so each entry looks at the few postings that could
be its match: the work grows with the statement, not with statement x ledger.

Reported: matched pairs; amount differences; statement entries with no ledger
event (a deposit refused for a wrong reference stays here: return it to the
payer; an entry in another currency stays here too); ledger events with no
statement entry within the statement's period; entries not booked (pending,
information only); reversals no credit explains; batches whose transactions do
not add up to the entry; entry ids met twice in the file. Totals are kept per
currency, never added across currencies.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

from ledger.domain import events as ev
from ledger.domain.identifiers import compact_payment_reference
from ledger.domain.money import format_euro, parse_euro
from ledger.reconciliation.statements import CurrencyTotals, Entry, Statement, written_reference
from ledger.storage.log import notifications
from ledger.storage.topics import stored_topic

if TYPE_CHECKING:
    from ledger.application import KmoLedger

CREDIT_EVENTS = ("OwnShareDeposited", "SubsidyToppedUp", "RecoveryRepaid")
DEBIT_EVENTS = ("PayoutExecuted", "RefundExecuted")


# ---------------------------------------------------------------------- the ledger's side


@dataclass(slots=True)
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
        """Whether the entry's remittance names this posting's application: its
        structured reference, its project number in the text, or its reference in
        the text's digits. A posting with no project number is named by no text."""
        if self.reference and entry.reference == self.reference:
            return True
        text = entry.description
        return bool(text) and (
            bool(self.project_number and self.project_number in text)
            or (self.reference is not None and self.reference in _NOT_DIGITS.sub("", text))
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
    pending: list[dict[str, Any]] = field(default_factory=list)
    reversed: list[dict[str, Any]] = field(default_factory=list)
    batch_mismatches: list[dict[str, Any]] = field(default_factory=list)
    duplicate_ids: list[dict[str, Any]] = field(default_factory=list)
    examined: int = 0
    """Postings and entries looked at while matching: it grows with the
    statement and the ledger, not with their product."""

    @property
    def ok(self) -> bool:
        return not (
            self.differences
            or self.unmatched_statement
            or self.unmatched_ledger
            or self.reversed
            or self.batch_mismatches
            or self.duplicate_ids
        )


class _Queue:
    """Postings that are equal candidates for an entry, in the order the matching
    prefers them (an own-share deposit first, then by sequence, then as the
    ledger gave them); the first one still open is the one taken."""

    __slots__ = ("items", "head")

    def __init__(self) -> None:
        self.items: list[int] = []
        self.head = 0


class _OpenPostings:
    """The postings not yet paired, indexed the ways the matching asks for them:
    by structured reference and amount, by amount and value date, by the
    reference or project number an entry's remittance names. An entry looks at
    the few postings that could be its match, never at every posting."""

    def __init__(self, postings: list[Posting]):
        self.postings = postings
        self.taken = [False] * len(postings)
        self.examined = 0
        self.by_reference_amount: dict[tuple[str, str, int], list[int]] = defaultdict(list)
        self.by_day: dict[tuple[str, int, date], _Queue] = defaultdict(_Queue)
        self.by_day_reference: dict[tuple[str, int, date, str], _Queue] = defaultdict(_Queue)
        self.by_reference: dict[str, list[int]] = defaultdict(list)
        self.by_project: dict[str, list[int]] = defaultdict(list)
        self.project_prefixes: dict[str, set[int]] = defaultdict(set)
        order: dict[int, tuple[bool, int, int]] = {}
        for position, posting in enumerate(postings):
            direction, amount, value_date = posting.direction, posting.amount, posting.value_date
            reference, project = posting.reference, posting.project_number
            order[position] = (posting.type != "OwnShareDeposited", posting.sequence, position)
            self.by_day[(direction, amount, value_date)].items.append(position)
            if reference:
                self.by_reference_amount[(direction, reference, amount)].append(position)
                self.by_day_reference[(direction, amount, value_date, reference)].items.append(position)
                self.by_reference[reference].append(position)
            if project:
                self.by_project[project].append(position)
                self.project_prefixes[project[:_PREFIX]].add(len(project))
        for queues in (self.by_day, self.by_day_reference):
            for queue in queues.values():
                queue.items.sort(key=order.__getitem__)

    def take(self, position: int) -> Posting:
        self.taken[position] = True
        return self.postings[position]

    def open(self, positions: Iterable[int], direction: str) -> list[int]:
        """Those of ``positions`` still open, in ``direction``."""
        looked_at = list(positions)
        self.examined += len(looked_at)
        return [i for i in looked_at if not self.taken[i] and self.postings[i].direction == direction]

    def first(self, queue: _Queue | None) -> int | None:
        """The first posting of ``queue`` still open (those taken are passed once)."""
        if queue is None:
            return None
        while queue.head < len(queue.items) and self.taken[queue.items[queue.head]]:
            queue.head += 1
            self.examined += 1
        if queue.head == len(queue.items):
            return None
        self.examined += 1
        return queue.items[queue.head]

    def named(self, entry: Entry) -> list[int]:
        """The open postings of the entry's direction whose application the entry's
        remittance names (:meth:`Posting.named_in`), found through the indexes:
        its structured reference, every project number written in its text, every
        reference in the digits of its text."""
        found: set[int] = set()
        if entry.reference:
            found.update(self.by_reference.get(entry.reference, ()))
        text = entry.description
        if text:
            for prefix, lengths in self.project_prefixes.items():
                start = text.find(prefix)
                while start >= 0:
                    for length in lengths:
                        found.update(self.by_project.get(text[start : start + length], ()))
                    start = text.find(prefix, start + 1)
            digits = _NOT_DIGITS.sub("", text)
            for start in range(len(digits) - _REFERENCE_DIGITS + 1):
                found.update(self.by_reference.get(digits[start : start + _REFERENCE_DIGITS], ()))
        return self.open(sorted(found), entry.direction)

    def best(self, positions: list[int], entry: Entry, named: bool) -> int | None:
        """Prefer the posting the remittance names, then the same value date, then
        the nearest amount, then an own-share deposit, then the nearest date, then
        the lower sequence, then the ledger's order. ``named``: every one of
        ``positions`` is named by the entry."""
        if not positions:
            return None

        def preference(position: int) -> tuple[Any, ...]:
            p = self.postings[position]
            return (
                not (named or p.named_in(entry)),
                p.value_date != entry.value_date,
                abs(p.amount - entry.amount),
                p.type != "OwnShareDeposited",
                abs((p.value_date - entry.value_date).days),
                p.sequence,
                position,
            )

        return min(positions, key=preference)


_PREFIX = 4
_REFERENCE_DIGITS = 12
_NOT_DIGITS = re.compile(r"\D")


class _ReturnedDebits:
    """The statement's open debits that may send a credit back: by amount and the
    reference they carry, and the bank's reversals by amount; each list in
    statement order."""

    def __init__(self, entries: list[Entry], candidates: list[int]):
        self.by_reference: dict[tuple[int, str], list[int]] = defaultdict(list)
        self.reversals: dict[int, list[int]] = defaultdict(list)
        for index in candidates:
            debit = entries[index]
            if debit.direction != "debit":
                continue
            if debit.reversal:
                self.reversals[debit.amount].append(index)
            for reference in {r for r in (debit.reference, debit.reference_text) if r is not None}:
                self.by_reference[(debit.amount, reference)].append(index)


def reconcile(statement: Statement, postings: list[Posting], owner_of=lambda reference: None) -> Reconciliation:
    """Match statement entries and postings; ``owner_of(reference)`` names the
    application a structured reference was given to (for the unmatched report).

    Each entry looks only at the postings an index gives for it, so the work
    grows with the statement and the ledger, not with their product."""
    result = Reconciliation(statement)
    entries = statement.entries
    book = _OpenPostings(postings)
    paired = [False] * len(entries)
    euro = []
    for index, entry in enumerate(entries):
        if entry.currency != "EUR":
            result.unmatched_statement.append(
                {"entry": entry.as_dict(), "reason": f"in {entry.currency}: the wallets are kept in euro"}
            )
        else:
            euro.append(index)
    settled = [i for i in euro if not entries[i].reversal]  # a reversal is never settled money

    def pair(index: int, position: int) -> None:
        entry, posting = entries[index], book.take(position)
        paired[index] = True
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

    # 1. credits with a structured reference: that application's money in, same amount
    for index in settled:
        entry = entries[index]
        if entry.direction == "credit" and entry.reference:
            key = ("credit", entry.reference, entry.amount)
            chosen = book.best(book.open(book.by_reference_amount.get(key, ()), "credit"), entry, named=True)
            if chosen is not None:
                pair(index, chosen)
    # 2. the same amount on the same value date, the remittance deciding between equals
    for index in settled:
        if paired[index]:
            continue
        entry = entries[index]
        day = (entry.direction, entry.amount, entry.value_date)
        if entry.reference:
            chosen = book.first(book.by_day_reference.get((*day, entry.reference)))
        else:
            exact = [
                i
                for i in book.named(entry)
                if book.postings[i].amount == entry.amount and book.postings[i].value_date == entry.value_date
            ]
            chosen = book.best(exact, entry, named=True) if exact else book.first(book.by_day.get(day))
        if chosen is not None:
            pair(index, chosen)
    # 3. a remittance that names the application (its reference or project number)
    #    pairs what is left with the nearest of its postings: amount or date differ
    for index in settled:
        if not paired[index]:
            chosen = book.best(book.named(entries[index]), entries[index], named=True)
            if chosen is not None:
                pair(index, chosen)

    # 4. money that came in unexplained and went back to the payer: the first
    #    later debit of the same amount that carries its reference, or a reversal
    left = [i for i in euro if not paired[i]]
    debits = _ReturnedDebits(entries, left)
    for index in left:
        credit = entries[index]
        if credit.direction != "credit" or credit.reversal:
            continue
        reference = credit.reference or credit.reference_text
        candidates = debits.reversals.get(credit.amount, [])
        if reference is not None:
            candidates = candidates + debits.by_reference.get((credit.amount, reference), [])
        result.examined += len(candidates)
        back = min(
            (i for i in candidates if not paired[i] and entries[i].value_date >= credit.value_date),
            default=None,
        )
        if back is not None:
            paired[index] = paired[back] = True
            result.returned.append({"entry": credit.as_dict(), "return": entries[back].as_dict()})
    for index in euro:
        entry = entries[index]
        if paired[index]:
            continue
        if entry.reversal:
            result.reversed.append({"entry": entry.as_dict(), "reason": _why_reversed(entry)})
        else:
            result.unmatched_statement.append({"entry": entry.as_dict(), "reason": _why_unmatched(entry, owner_of)})
    start, end = statement.period_from, statement.period_to
    for position, posting in enumerate(postings):
        if book.taken[position]:
            continue
        if (start is None or posting.value_date >= start) and (end is None or posting.value_date <= end):
            result.unmatched_ledger.append(
                {
                    "event": posting.as_dict(),
                    "reason": f"{posting.type} {posting.sequence} of {posting.enterprise_number} "
                    f"({posting.project_number}) has no statement entry",
                }
            )
    _statement_findings(statement, result)
    result.examined += book.examined
    return result


def _statement_findings(statement: Statement, result: Reconciliation) -> None:
    """What the reader kept apart: entries not booked, batches that do not add
    up, ids met twice. None of them was matched."""
    for unbooked in statement.unbooked:
        result.pending.append({"entry": unbooked.as_dict(), "reason": _why_not_booked(unbooked.status)})
    for batch in statement.batch_mismatches:
        entry = batch.entry
        if batch.foreign:
            reason = (
                f"its {batch.count} transactions are in {', '.join(batch.foreign)}, the entry in {entry.currency}: "
                "not matched"
            )
        else:
            reason = (
                f"its {batch.count} transactions add up to {format_euro(batch.parts)} {entry.currency}, "
                f"the entry is {format_euro(entry.amount)}: not matched"
            )
        result.batch_mismatches.append(
            {
                "entry": entry.as_dict(),
                "transactions": batch.count,
                "transactions_total": format_euro(batch.parts),
                "difference": format_euro(entry.amount - batch.parts),
                "reason": reason,
            }
        )
    for duplicate in statement.duplicates:
        where = (
            "earlier in the same statement"
            if duplicate.first_statement == duplicate.statement
            else f"in statement {duplicate.first_statement}"
        )
        result.duplicate_ids.append(
            {
                "entry": duplicate.entry.as_dict(),
                "statement": duplicate.statement,
                "first_statement": duplicate.first_statement,
                "reason": f"entry id {duplicate.entry.id!r} of statement {duplicate.statement} was met {where} "
                "of this file: not matched twice",
            }
        )


def _why_not_booked(status: str) -> str:
    named = {"PDNG": "pending (PDNG)", "INFO": "information only (INFO)"}.get(status, f"status {status}")
    return f"{named}: not booked, so not matched"


def _why_reversed(entry: Entry) -> str:
    undone = "debit" if entry.direction == "credit" else "credit"
    return (
        f"a reversal (RvslInd): the bank undid an earlier {undone} of {format_euro(entry.amount)}; "
        "never matched as settled money: check the ledger"
    )


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
    (what ``--json`` prints and the human tables are drawn from). The
    statement's ``credits`` and ``debits`` are its euro entries; ``totals`` has
    every currency's, none added to another's."""
    statement = result.statement
    totals = statement.totals()
    euro = totals.get("EUR", CurrencyTotals())
    return {
        "ok": result.ok,
        "statement": {
            "file": statement.source,
            "format": statement.format,
            "from": statement.period_from.isoformat() if statement.period_from else None,
            "to": statement.period_to.isoformat() if statement.period_to else None,
            "entries": len(statement.entries),
            "not_booked": statement.skipped,
            "credits": format_euro(euro.credits),
            "debits": format_euro(euro.debits),
        },
        "totals": {
            currency: {"entries": t.entries, "credits": format_euro(t.credits), "debits": format_euro(t.debits)}
            for currency, t in totals.items()
        },
        "matched": result.matched,
        "differences": result.differences,
        "returned": result.returned,
        "unmatched_statement": result.unmatched_statement,
        "unmatched_ledger": result.unmatched_ledger,
        "pending": result.pending,
        "reversed": result.reversed,
        "batch_mismatches": result.batch_mismatches,
        "duplicate_ids": result.duplicate_ids,
    }
