"""``kmo-ledger reconcile --statement FILE``: the financial manager's bank
statement against the ledger's money events.

The statement is ISO 20022 camt.053 XML (any version: parsed by local element
names, namespaces ignored) or a CSV with the columns ``value_date, amount,
direction (credit/debit), reference, description`` (``booking_date`` and
``id`` optional). Matching, in euro cents:

- a credit with a Belgian structured reference (OGM/VCS ``+++123/4567/89002+++``
  or its 12 digits, in ``RmtInf/Strd/CdtrRefInf/Ref`` or the unstructured text)
  matches the own-share deposit of the application with that reference, or a
  government top-up or recovery repayment of that application;
- any other credit matches a top-up or repayment of the same amount and value
  date; a debit matches a payout to a provider or a refund or return of the
  same amount and value date. A remittance that names the application (its
  reference or project number) decides between equal candidates, and pairs a
  statement entry with its ledger event even when amount or date differ;
- a credit that no ledger event explains and that went back (a debit of the
  same amount and reference, or a bank reversal) is reported as returned;
- events that a reversal (``EventReversed``) undid are left out.

Reported: matched pairs; amount differences; statement entries with no ledger
event (a deposit refused for a wrong reference stays here: return it to the
payer); ledger events with no statement entry within the statement's period.
Exit 1 on any difference or anything unmatched.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from scripts import common as cli

PROG = "kmo-ledger reconcile"
CREDIT_EVENTS = ("OwnShareDeposited", "SubsidyToppedUp", "RecoveryRepaid")
DEBIT_EVENTS = ("PayoutExecuted", "RefundExecuted")
_OGM_IN_TEXT = re.compile(r"(?:\+{3}|\*{3})\s*(\d{3})\s*/\s*(\d{4})\s*/\s*(\d{5})\s*(?:\+{3}|\*{3})")
_TWELVE_DIGITS = re.compile(r"(?<!\d)\d{12}(?!\d)")


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _reconcile(argv))


# ---------------------------------------------------------------------- the two sides


@dataclass
class Entry:
    """One statement entry (one transaction of a batch booking counts as one entry)."""

    id: str
    direction: str
    amount: int
    value_date: date
    booking_date: date | None = None
    reference: str | None = None
    """The 12 digits of a valid structured reference, if any."""
    reference_text: str | None = None
    """The structured reference as written (also when it is not valid)."""
    description: str = ""
    currency: str = "EUR"
    reversal: bool = False

    def as_dict(self) -> dict[str, Any]:
        from ledger.domain.money import format_euro

        return {
            "id": self.id,
            "direction": self.direction,
            "amount": format_euro(self.amount),
            "value_date": self.value_date.isoformat(),
            "booking_date": self.booking_date.isoformat() if self.booking_date else None,
            "reference": _ogm(self.reference) if self.reference else self.reference_text,
            "description": self.description,
            "currency": self.currency,
        }


@dataclass
class Statement:
    source: str
    format: str
    period_from: date | None = None
    period_to: date | None = None
    entries: list[Entry] = field(default_factory=list)
    skipped: int = 0
    """Entries not booked (pending or information only): not reconciled."""


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
        from ledger.domain.money import format_euro

        return {
            "enterprise_number": self.enterprise_number,
            "sequence": self.sequence,
            "type": self.type,
            "application_id": self.application_id,
            "project_number": self.project_number,
            "payment_reference": _ogm(self.reference) if self.reference else None,
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


def _ogm(digits: str) -> str:
    return f"+++{digits[:3]}/{digits[3:7]}/{digits[7:]}+++"


# ---------------------------------------------------------------------- reading statements


def parse_amount(text: str, where: str) -> int:
    """A statement amount in euro cents; at most two decimals, never negative."""
    raw = (text or "").strip().replace(" ", "")
    if "," in raw and "." not in raw:
        raw = raw.replace(",", ".")
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise cli.UsageError(f"{where}: {text!r} is not an amount") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise cli.UsageError(f"{where}: {text!r} is not an amount in euro and cents")
    return int(amount * 100)


def parse_day(text: str | None, where: str) -> date | None:
    if not text or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise cli.UsageError(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from None


def structured_reference(text: str | None) -> str | None:
    """The 12 digits of a valid Belgian structured reference (OGM/VCS), else None."""
    from ledger.domain.identifiers import compact_payment_reference

    if not text:
        return None
    return compact_payment_reference(text.strip().replace("*", "+"))


def reference_in_text(text: str) -> str | None:
    """A structured reference written in free text: ``+++123/4567/89002+++`` or 12 valid digits."""
    for match in _OGM_IN_TEXT.finditer(text or ""):
        found = structured_reference("".join(match.groups()))
        if found:
            return found
    for match in _TWELVE_DIGITS.finditer(text or ""):
        found = structured_reference(match.group())
        if found:
            return found
    return None


def read_statement(path: Path) -> Statement:
    if not path.is_file():
        raise cli.UsageError(f"{path}: no such statement file")
    head = path.read_bytes()[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return parse_camt(path)
    return parse_csv(path)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element | None, name: str) -> list[ET.Element]:
    if element is None:
        return []
    return [child for child in element if _local(child.tag) == name]


def _find(element: ET.Element | None, *path: str) -> ET.Element | None:
    for name in path:
        found = _children(element, name)
        element = found[0] if found else None
        if element is None:
            return None
    return element


def _text(element: ET.Element | None, *path: str) -> str | None:
    found = _find(element, *path)
    return found.text.strip() if found is not None and found.text else None


def _all_text(element: ET.Element | None, *path: str) -> list[str]:
    """The texts of every element at ``path`` (each step may repeat)."""
    level = [element] if element is not None else []
    for name in path:
        level = [child for parent in level for child in _children(parent, name)]
    return [e.text.strip() for e in level if e.text and e.text.strip()]


def _date_of(element: ET.Element | None) -> str | None:
    return _text(element, "Dt") or _text(element, "DtTm")


def parse_camt(path: Path) -> Statement:
    """An ISO 20022 camt.053 statement (camt.052 reports read the same way)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise cli.UsageError(f"{path}: not readable XML ({error})") from None
    statement = Statement(source=str(path), format="camt.053")
    blocks = [e for e in root.iter() if _local(e.tag) in ("Stmt", "Rpt")]
    if not blocks:
        raise cli.UsageError(f"{path}: no camt.053 statement (Stmt) in this XML")
    for block_number, block in enumerate(blocks, start=1):
        period = _find(block, "FrToDt")
        start = parse_day(_text(period, "FrDtTm") or _text(period, "FrDt"), f"{path} statement {block_number}")
        end = parse_day(_text(period, "ToDtTm") or _text(period, "ToDt"), f"{path} statement {block_number}")
        if start:
            statement.period_from = min(filter(None, (statement.period_from, start)))
        if end:
            statement.period_to = max(filter(None, (statement.period_to, end)))
        for number, node in enumerate(_children(block, "Ntry"), start=1):
            statement.entries += _camt_entries(node, f"{path.name} entry {number}", statement)
    return statement


def _camt_entries(node: ET.Element, where: str, statement: Statement) -> list[Entry]:
    status = _text(node, "Sts", "Cd") or _text(node, "Sts")
    if status and status.upper() not in ("BOOK", "BOOKED"):
        statement.skipped += 1
        return []
    amount_node = _find(node, "Amt")
    if amount_node is None:
        raise cli.UsageError(f"{where}: no Amt")
    direction = _direction(_text(node, "CdtDbtInd"), where)
    value_date = parse_day(_date_of(_find(node, "ValDt")), where)
    booking_date = parse_day(_date_of(_find(node, "BookgDt")), where)
    if value_date is None and booking_date is None:
        raise cli.UsageError(f"{where}: neither a value date (ValDt) nor a booking date (BookgDt)")
    identifier = _text(node, "NtryRef") or _text(node, "AcctSvcrRef") or where
    common = {
        "value_date": value_date or booking_date,
        "booking_date": booking_date,
        "reversal": (_text(node, "RvslInd") or "").lower() == "true",
    }
    transactions = [tx for details in _children(node, "NtryDtls") for tx in _children(details, "TxDtls")]
    split = len(transactions) > 1 and all(_tx_amount(tx) is not None for tx in transactions)
    if not split:
        return [
            _entry(
                identifier,
                direction,
                parse_amount(amount_node.text or "", where),
                amount_node.get("Ccy", "EUR"),
                transactions,
                [node],
                common,
            )
        ]
    entries = []
    for index, tx in enumerate(transactions, start=1):
        tx_amount = _tx_amount(tx)
        tx_direction = _text(tx, "CdtDbtInd")
        entries.append(
            _entry(
                _text(tx, "Refs", "AcctSvcrRef") or f"{identifier}/{index}",
                _direction(tx_direction, where) if tx_direction else direction,
                parse_amount(tx_amount.text or "", f"{where} transaction {index}"),
                tx_amount.get("Ccy", amount_node.get("Ccy", "EUR")),
                [tx],
                [],
                common,
            )
        )
    return entries


def _tx_amount(tx: ET.Element) -> ET.Element | None:
    direct = _find(tx, "Amt")  # an Element without children is falsy: compare with None
    return direct if direct is not None else _find(tx, "AmtDtls", "TxAmt", "Amt")


def _direction(text: str | None, where: str) -> str:
    value = (text or "").strip().upper()
    if value in ("CRDT", "CREDIT", "C", "CR"):
        return "credit"
    if value in ("DBIT", "DEBIT", "D", "DR", "DB"):
        return "debit"
    raise cli.UsageError(f"{where}: direction {text!r} is neither credit (CRDT) nor debit (DBIT)")


def _entry(identifier, direction, amount, currency, transactions, extra_nodes, common) -> Entry:
    structured = [r for tx in transactions for r in _all_text(tx, "RmtInf", "Strd", "CdtrRefInf", "Ref")]
    unstructured = [t for tx in transactions for t in _all_text(tx, "RmtInf", "Ustrd")]
    names = [
        n
        for tx in transactions
        for n in _all_text(tx, "RltdPties", "Dbtr", "Nm") + _all_text(tx, "RltdPties", "Cdtr", "Nm")
    ]
    extra = [t for tx in transactions for t in _all_text(tx, "AddtlTxInf")]
    extra += [t for n in extra_nodes for t in _all_text(n, "AddtlNtryInf")]
    description = " | ".join(unstructured + names + extra)
    reference = next((found for found in map(structured_reference, structured) if found), None)
    if reference is None and not structured:
        reference = reference_in_text(" ".join(unstructured))
    return Entry(
        id=identifier,
        direction=direction,
        amount=amount,
        currency=(currency or "EUR").upper(),
        reference=reference,
        reference_text=structured[0] if structured else None,
        description=description,
        **common,
    )


def parse_csv(path: Path) -> Statement:
    """A CSV statement: value_date, amount, direction, reference, description (header required)."""
    statement = Statement(source=str(path), format="csv")
    with path.open(newline="", encoding="utf-8-sig") as stream:
        sample = stream.read(4096)
        stream.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(stream, dialect=dialect)
        columns = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
        missing = [c for c in ("value_date", "amount", "direction") if c not in columns]
        if missing:
            raise cli.UsageError(
                f"{path}: columns {', '.join(missing)} missing "
                "(expected value_date, amount, direction, reference, description)"
            )

        def cell(row: dict, name: str) -> str:
            return (row.get(columns.get(name, ""), "") or "").strip()

        for number, row in enumerate(reader, start=2):
            where = f"{path.name} line {number}"
            if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                continue
            raw_reference = cell(row, "reference")
            description = cell(row, "description")
            reference = structured_reference(raw_reference) if raw_reference else reference_in_text(description)
            value_date = parse_day(cell(row, "value_date"), where)
            if value_date is None:
                raise cli.UsageError(f"{where}: no value_date")
            statement.entries.append(
                Entry(
                    id=cell(row, "id") or f"line {number}",
                    direction=_direction(cell(row, "direction"), where),
                    amount=parse_amount(cell(row, "amount"), where),
                    value_date=value_date,
                    booking_date=parse_day(cell(row, "booking_date"), where),
                    reference=reference,
                    reference_text=raw_reference or None,
                    description=description,
                    currency=(cell(row, "currency") or "EUR").upper(),
                )
            )
    return statement


# ---------------------------------------------------------------------- reading the ledger


def ledger_postings(ledger: Any, start: date, end: date) -> list[Posting]:
    """Money events with a value date from ``start`` to ``end``, reversed ones left out."""
    from ledger.storage.topics import stored_topic

    from ledger.domain import events as ev
    from ledger.domain.identifiers import compact_payment_reference
    from ledger.domain.money import parse_euro

    topics = [stored_topic(ev.EVENT_TYPES[name]) for name in CREDIT_EVENTS + DEBIT_EVENTS + ("EventReversed",)]
    wallets: dict[UUID, Any] = {}
    reversed_events: set[tuple[UUID, int]] = set()
    postings: list[Posting] = []
    for notification in cli.notifications(ledger, topics):
        state = orjson.loads(notification.state)
        type_name = cli.event_type(notification.topic)
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
    from ledger.domain.money import format_euro

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
            return f"reference {_ogm(entry.reference)} belongs to no application: return to payer"
        return (
            f"reference {_ogm(entry.reference)} is application {owner.application_id} of {owner.enterprise_number}, "
            "which has no matching deposit: post it if it is right, else return to payer"
        )
    if entry.reference_text:
        return f"structured reference {entry.reference_text!r} is not valid (check digits): return to payer"
    return "no ledger event explains this credit: return to payer"


# ---------------------------------------------------------------------- the command


def _reconcile(argv: list[str] | None) -> int:
    parser = cli.parser("reconcile", "Match a bank statement (camt.053 or CSV) against the ledger.")
    parser.add_argument("--statement", metavar="FILE", type=Path, required=True, help="camt.053 XML or CSV")
    args = parser.parse_args(argv)
    statement = read_statement(args.statement)
    dates = [d for e in statement.entries for d in (e.value_date, e.booking_date) if d]
    dates += [d for d in (statement.period_from, statement.period_to) if d]
    if not dates:
        raise cli.UsageError(f"{args.statement}: the statement has no entries and no period")
    if statement.period_from is None or statement.period_to is None:
        statement.period_from = statement.period_from or min(dates)
        statement.period_to = statement.period_to or max(dates)
    with cli.open_ledger() as ledger:
        postings = ledger_postings(ledger, min(dates), max(dates))
        result = reconcile(statement, postings, ledger.payment_reference_owner)
    report = as_report(result)
    if args.json:
        cli.print_json(report)
    else:
        show(report)
    return cli.EXIT_OK if result.ok else cli.EXIT_PROBLEM


def as_report(result: Reconciliation) -> dict[str, Any]:
    from ledger.domain.money import format_euro

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


def show(report: dict[str, Any]) -> None:
    out = cli.console()
    s = report["statement"]
    out.print(
        f"Statement {s['file']} ({s['format']}), {s['from']} to {s['to']}: {s['entries']} entries, "
        f"credits {s['credits']}, debits {s['debits']}"
    )

    def entry_cells(e: dict[str, Any]) -> list[Any]:
        return [e["id"], e["value_date"], e["direction"], e["amount"], e["reference"] or e["description"][:40]]

    def event_cells(p: dict[str, Any]) -> list[Any]:
        return [p["enterprise_number"], p["sequence"], p["type"], p["amount"], p["value_date"]]

    entry_columns = ["entry", "value date", "direction", "amount", "reference"]
    event_columns = ["wallet", "event", "type", "ledger amount", "ledger date"]
    money = ("amount", "ledger amount", "difference")
    if report["matched"]:
        out.print(
            cli.table(
                "Matched",
                entry_columns + event_columns + ["note"],
                (entry_cells(m["entry"]) + event_cells(m["event"]) + [m["note"]] for m in report["matched"]),
                right=money,
            )
        )
    if report["differences"]:
        out.print(
            cli.table(
                "Amount differences",
                entry_columns + event_columns + ["difference"],
                (entry_cells(d["entry"]) + event_cells(d["event"]) + [d["difference"]] for d in report["differences"]),
                right=money,
            )
        )
    if report["returned"]:
        out.print(
            cli.table(
                "Returned to payer",
                entry_columns + ["returned by", "return date"],
                (entry_cells(r["entry"]) + [r["return"]["id"], r["return"]["value_date"]] for r in report["returned"]),
                right=money,
            )
        )
    if report["unmatched_statement"]:
        out.print(
            cli.table(
                "Statement entries with no ledger event",
                entry_columns + ["finding"],
                (entry_cells(u["entry"]) + [u["reason"]] for u in report["unmatched_statement"]),
                right=money,
            )
        )
    if report["unmatched_ledger"]:
        out.print(
            cli.table(
                "Ledger events with no statement entry",
                event_columns + ["project", "finding"],
                (
                    event_cells(u["event"]) + [u["event"]["project_number"], u["reason"]]
                    for u in report["unmatched_ledger"]
                ),
                right=money,
            )
        )
    problems = len(report["differences"]) + len(report["unmatched_statement"]) + len(report["unmatched_ledger"])
    verdict = "reconciled" if report["ok"] else f"NOT reconciled: {problems} finding(s)"
    out.print(
        f"{len(report['matched'])} matched, {len(report['differences'])} amount difference(s), "
        f"{len(report['returned'])} returned, {len(report['unmatched_statement'])} unmatched on the statement, "
        f"{len(report['unmatched_ledger'])} unmatched in the ledger: {verdict}"
    )
