"""Bank statements (rekeninguittreksels) of the financial manager's account,
read into entries in euro cents.

A statement is ISO 20022 camt.053 XML (any version: read by local element
names, namespaces ignored; camt.052 reports read the same way) or a CSV with
the columns ``value_date, amount, direction (credit/debit), reference,
description`` (``booking_date``, ``id`` and ``currency`` optional). One
transaction of a batch booking counts as one entry; entries not booked
(pending or information only) are counted, not read.

A Belgian structured reference (OGM/VCS ``+++123/4567/89002+++`` or its 12
digits) is taken from ``RmtInf/Strd/CdtrRefInf/Ref`` or the CSV's
``reference`` column, else from the unstructured text. A statement that
cannot be read is bad input: :class:`InvalidStatement`, naming the file and
the entry or line.
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

from ledger.domain.errors import ValidationFailed
from ledger.domain.identifiers import compact_payment_reference
from ledger.domain.money import format_euro

_OGM_IN_TEXT = re.compile(r"(?:\+{3}|\*{3})\s*(\d{3})\s*/\s*(\d{4})\s*/\s*(\d{5})\s*(?:\+{3}|\*{3})")
_TWELVE_DIGITS = re.compile(r"(?<!\d)\d{12}(?!\d)")


class InvalidStatement(ValidationFailed):
    """The statement file is missing or malformed; the detail names where."""


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
        return {
            "id": self.id,
            "direction": self.direction,
            "amount": format_euro(self.amount),
            "value_date": self.value_date.isoformat(),
            "booking_date": self.booking_date.isoformat() if self.booking_date else None,
            "reference": written_reference(self.reference) if self.reference else self.reference_text,
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

    def fill_period(self) -> tuple[date, date]:
        """The first and last day the statement speaks of: its period and its
        entries' value and booking dates. A period the bank left out (a CSV gives
        none) is taken to be those days. No entries and no period is bad input."""
        dates = [d for e in self.entries for d in (e.value_date, e.booking_date) if d]
        dates += [d for d in (self.period_from, self.period_to) if d]
        if not dates:
            raise InvalidStatement(f"{self.source}: the statement has no entries and no period")
        if self.period_from is None or self.period_to is None:
            self.period_from = self.period_from or min(dates)
            self.period_to = self.period_to or max(dates)
        return min(dates), max(dates)


def written_reference(digits: str) -> str:
    """The 12 digits of a structured reference as written: ``+++123/4567/89002+++``."""
    return f"+++{digits[:3]}/{digits[3:7]}/{digits[7:]}+++"


# ---------------------------------------------------------------------- amounts, dates, references


def parse_amount(text: str, where: str) -> int:
    """A statement amount in euro cents; at most two decimals, never negative."""
    raw = (text or "").strip().replace(" ", "")
    if "," in raw and "." not in raw:
        raw = raw.replace(",", ".")
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise InvalidStatement(f"{where}: {text!r} is not an amount") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise InvalidStatement(f"{where}: {text!r} is not an amount in euro and cents")
    return int(amount * 100)


def parse_day(text: str | None, where: str) -> date | None:
    """A date written ``YYYY-MM-DD`` (a timestamp's date part), or None when empty."""
    if not text or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise InvalidStatement(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from None


def structured_reference(text: str | None) -> str | None:
    """The 12 digits of a valid Belgian structured reference (OGM/VCS), else None."""
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


def _direction(text: str | None, where: str) -> str:
    value = (text or "").strip().upper()
    if value in ("CRDT", "CREDIT", "C", "CR"):
        return "credit"
    if value in ("DBIT", "DEBIT", "D", "DR", "DB"):
        return "debit"
    raise InvalidStatement(f"{where}: direction {text!r} is neither credit (CRDT) nor debit (DBIT)")


# ---------------------------------------------------------------------- reading a statement file


def read_statement(path: Path) -> Statement:
    """The statement in ``path``: camt.053 when it starts with ``<``, else CSV."""
    if not path.is_file():
        raise InvalidStatement(f"{path}: no such statement file")
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
        raise InvalidStatement(f"{path}: not readable XML ({error})") from None
    statement = Statement(source=str(path), format="camt.053")
    blocks = [e for e in root.iter() if _local(e.tag) in ("Stmt", "Rpt")]
    if not blocks:
        raise InvalidStatement(f"{path}: no camt.053 statement (Stmt) in this XML")
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
        raise InvalidStatement(f"{where}: no Amt")
    direction = _direction(_text(node, "CdtDbtInd"), where)
    value_date = parse_day(_date_of(_find(node, "ValDt")), where)
    booking_date = parse_day(_date_of(_find(node, "BookgDt")), where)
    if value_date is None and booking_date is None:
        raise InvalidStatement(f"{where}: neither a value date (ValDt) nor a booking date (BookgDt)")
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
        if tx_amount is None:  # split only when every transaction states its amount
            raise InvalidStatement(f"{where} transaction {index}: no amount")
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
            raise InvalidStatement(
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
                raise InvalidStatement(f"{where}: no value_date")
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
