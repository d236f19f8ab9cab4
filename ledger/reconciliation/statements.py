"""Bank statements (rekeninguittreksels) of the financial manager's account,
read into entries in euro cents, one entry at a time.

A statement is ISO 20022 camt.053 XML (any version: read by local element
names, namespaces ignored; camt.052 reports read the same way) or a CSV with
the columns ``value_date, amount, direction (credit/debit), reference,
description`` (``booking_date``, ``id`` and ``currency`` optional).

A statement is streamed, never read whole: camt.053 by an incremental XML
parse that holds one entry (Ntry) at a time and lets go of it once read, a
CSV row by row. A file larger than ``max_bytes`` (:data:`MAX_BYTES`, 512 MiB,
by default) is refused before it is read. The XML may carry no document type
declaration (DTD): without one, no entity can be declared, expanded or
fetched from elsewhere.

What the reader keeps apart from the booked entries it reconciles:

- entries not booked, pending (PDNG) or information only (INFO): kept as
  :class:`Unbooked`, shown and never matched;
- a batch booking (several TxDtls, each with its amount) is one entry per
  transaction when the transactions add up to the entry's amount; when they
  do not, the entry is a :class:`BatchMismatch` and none of it is matched;
- an entry id (NtryRef, else AcctSvcrRef; a CSV's ``id``) met a second time in
  one file, in the same or another statement (Stmt) of it, is a
  :class:`DuplicateEntry` and is not read twice.

A reversal (RvslInd true) is read as an entry with ``reversal`` set. A
Belgian structured reference (OGM/VCS ``+++123/4567/89002+++`` or its 12
digits) is taken from ``RmtInf/Strd/CdtrRefInf/Ref`` or the CSV's
``reference`` column, else from the unstructured text. A statement that
cannot be read is bad input: :class:`InvalidStatement`, naming the file and
the entry or line.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, cast
from xml.parsers import expat

from ledger.domain.errors import ValidationFailed
from ledger.domain.identifiers import compact_payment_reference
from ledger.domain.money import EURO_TEXT, format_euro, parse_euro

MAX_BYTES = 512 * 1024 * 1024
"""The largest statement file read unless the caller allows another size."""

_CHUNK = 1 << 16
_OGM_IN_TEXT = re.compile(r"(?:\+{3}|\*{3})\s*(\d{3})\s*/\s*(\d{4})\s*/\s*(\d{5})\s*(?:\+{3}|\*{3})")
_TWELVE_DIGITS = re.compile(r"(?<!\d)\d{12}(?!\d)")
_BLOCKS = ("Stmt", "Rpt")


class InvalidStatement(ValidationFailed):
    """The statement file is missing or malformed; the detail names where."""


class StatementTooLarge(InvalidStatement):
    """The statement file is larger than the limit it is read under."""


@dataclass(slots=True)
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
    """The bank booked this entry to undo an earlier one (camt ``RvslInd``)."""

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
            "reversal": self.reversal,
        }


@dataclass(slots=True)
class Unbooked:
    """An entry the bank has not booked: pending (PDNG), information only (INFO)
    or any other status but BOOK. Not money on the account yet: never matched."""

    id: str
    status: str
    direction: str
    amount: int
    currency: str
    value_date: date | None
    reference: str | None
    description: str
    reversal: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "direction": self.direction,
            "amount": format_euro(self.amount),
            "currency": self.currency,
            "value_date": self.value_date.isoformat() if self.value_date else None,
            "reference": written_reference(self.reference) if self.reference else None,
            "description": self.description,
            "reversal": self.reversal,
        }


@dataclass(slots=True)
class BatchMismatch:
    """A batch booking whose transactions do not add up to the entry's amount
    (or are in another currency): the entry is not matched, nor any part of it."""

    entry: Entry
    """The entry as booked, with its amount and every transaction's remittance."""
    parts: int
    """The transactions' sum in cents, counted in the entry's direction."""
    count: int
    foreign: tuple[str, ...] = ()
    """Currencies of transactions that are not the entry's."""


@dataclass(slots=True)
class DuplicateEntry:
    """An entry whose id was met before in the same file: not read twice."""

    entry: Entry
    statement: int
    """The statement (Stmt, counted from 1) this entry is in."""
    first_statement: int
    """The statement the id was first met in."""


@dataclass
class CurrencyTotals:
    entries: int = 0
    credits: int = 0
    debits: int = 0


@dataclass
class Statement:
    source: str
    format: str
    period_from: date | None = None
    period_to: date | None = None
    entries: list[Entry] = field(default_factory=list)
    """Booked entries, to be reconciled."""
    skipped: int = 0
    """Entries not booked (pending or information only): not reconciled."""
    unbooked: list[Unbooked] = field(default_factory=list)
    batch_mismatches: list[BatchMismatch] = field(default_factory=list)
    duplicates: list[DuplicateEntry] = field(default_factory=list)
    statements: int = 1
    """How many statements (Stmt) the file holds."""

    def fill_period(self) -> tuple[date, date]:
        """The first and last day the statement speaks of: its period and its
        entries' value and booking dates. A period the bank left out (a CSV gives
        none) is taken to be those days. No entries and no period is bad input."""
        booked = [*self.entries, *(b.entry for b in self.batch_mismatches), *(d.entry for d in self.duplicates)]
        dates = [d for e in booked for d in (e.value_date, e.booking_date) if d]
        dates += [d for d in (self.period_from, self.period_to) if d]
        if not dates:
            raise InvalidStatement(f"{self.source}: the statement has no entries and no period")
        if self.period_from is None or self.period_to is None:
            self.period_from = self.period_from or min(dates)
            self.period_to = self.period_to or max(dates)
        return min(dates), max(dates)

    def totals(self) -> dict[str, CurrencyTotals]:
        """Every booked entry as the statement lists it, summed per currency (never
        added across currencies): the entries read, a batch that does not add up
        at its booked amount, an entry listed twice each time it is listed."""
        totals: dict[str, CurrencyTotals] = {}
        booked = [*self.entries, *(b.entry for b in self.batch_mismatches), *(d.entry for d in self.duplicates)]
        for entry in booked:
            total = totals.setdefault(entry.currency, CurrencyTotals())
            total.entries += 1
            if entry.direction == "credit":
                total.credits += entry.amount
            else:
                total.debits += entry.amount
        return dict(sorted(totals.items(), key=lambda item: (item[0] != "EUR", item[0])))


def written_reference(digits: str) -> str:
    """The 12 digits of a structured reference as written: ``+++123/4567/89002+++``."""
    return f"+++{digits[:3]}/{digits[3:7]}/{digits[7:]}+++"


# ---------------------------------------------------------------------- amounts, dates, references


def parse_amount(text: str, where: str) -> int:
    """A statement amount in euro cents, read by the domain's rule for money (ASCII
    digits, at most two decimals, never negative); a decimal comma is a point."""
    raw = (text or "").strip().replace(" ", "")
    if "," in raw and "." not in raw:
        raw = raw.replace(",", ".")
    try:
        Decimal(raw)
    except InvalidOperation:
        raise InvalidStatement(f"{where}: {text[:40]!r} is not an amount") from None
    if len(raw) > 40 or not EURO_TEXT.fullmatch(raw):
        raise InvalidStatement(f"{where}: {text[:40]!r} is not an amount in euro and cents")
    return parse_euro(raw)


def parse_day(text: str | None, where: str) -> date | None:
    """A date written ``YYYY-MM-DD`` (a timestamp's date part), or None when empty."""
    if not text or not text.strip():
        return None
    try:
        return _day(text.strip()[:10])
    except ValueError:
        raise InvalidStatement(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from None


@lru_cache(maxsize=4096)
def _day(text: str) -> date:
    """One date object for each day written: a statement's entries share a few days."""
    return date.fromisoformat(text)


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


def _currency(text: str | None) -> str:
    return sys.intern((text or "EUR").strip().upper() or "EUR")


# ---------------------------------------------------------------------- reading a statement file


def read_statement(
    path: Path, *, max_bytes: int | None = MAX_BYTES, on_read: Callable[[int], None] | None = None
) -> Statement:
    """The statement in ``path`` with every booked entry: camt.053 when it starts
    with ``<``, else CSV. ``on_read(n)`` is told of every ``n`` bytes read."""
    return StatementFile(path, max_bytes=max_bytes).read(on_read)


class StatementFile:
    """A statement file, checked before it is read: it exists, it is no larger
    than ``max_bytes``, and its first bytes tell camt.053 from CSV.

    :meth:`entries` streams the booked entries once, filling :attr:`statement`
    (period, entries not booked, batches that do not add up, ids met twice)
    as it goes; :meth:`read` keeps the entries in the statement too."""

    def __init__(self, path: Path, *, max_bytes: int | None = MAX_BYTES):
        if not path.is_file():
            raise InvalidStatement(f"{path}: no such statement file")
        self.path = path
        self.max_bytes = max_bytes
        self.size = path.stat().st_size
        if max_bytes is not None and self.size > max_bytes:
            raise StatementTooLarge(
                f"{path}: the statement is {self.size:,} bytes, more than the {max_bytes:,} bytes allowed"
            )
        with path.open("rb") as stream:
            head = stream.read(512).lstrip(b"\xef\xbb\xbf \t\r\n")
        self.statement = Statement(source=str(path), format="camt.053" if head.startswith(b"<") else "csv")
        self._seen: dict[str, int] = {}

    def read(self, on_read: Callable[[int], None] | None = None) -> Statement:
        self.statement.entries.extend(self.entries(on_read))
        return self.statement

    def entries(self, on_read: Callable[[int], None] | None = None) -> Iterator[Entry]:
        with self.path.open("rb") as stream:
            meter = _Metered(stream, self, on_read)
            if self.statement.format == "csv":
                yield from _read_csv(self, meter)
            else:
                yield from _CamtReader(self).entries(meter)

    def first_time(self, entry: Entry, statement: int) -> bool:
        """Whether the bank's id of this booked entry is met for the first time in
        the file; a second time it is recorded as a :class:`DuplicateEntry`."""
        first = self._seen.get(entry.id)
        if first is None:
            self._seen[entry.id] = statement
            return True
        self.statement.duplicates.append(DuplicateEntry(entry, statement, first))
        return False


class _Metered(io.RawIOBase):
    """The statement file's bytes, counted as they are read: the size limit holds
    for a file that grows while it is read, and ``on_read`` hears of each read."""

    def __init__(self, stream: io.BufferedReader, source: StatementFile, on_read: Callable[[int], None] | None):
        self.stream = stream
        self.source = source
        self.on_read = on_read
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.stream.readinto(buffer) or 0
        self.total += count
        limit = self.source.max_bytes
        if limit is not None and self.total > limit:
            raise StatementTooLarge(f"{self.source.path}: the statement grew beyond the {limit:,} bytes allowed")
        if count and self.on_read is not None:
            self.on_read(count)
        return count


# ---------------------------------------------------------------------- camt.053


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(element: ET.Element | None, name: str) -> list[ET.Element]:
    if element is None:
        return []
    return [child for child in element if child.tag == name]


def _find(element: ET.Element | None, *path: str) -> ET.Element | None:
    for name in path:
        if element is None:
            return None
        element = next((child for child in element if child.tag == name), None)
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


def _strip_namespaces(element: ET.Element) -> None:
    """Every tag under ``element`` by its local name: ``{urn:...}Amt`` is ``Amt``."""
    for node in element.iter():
        tag = node.tag
        if tag[0] == "{":
            node.tag = tag[tag.index("}") + 1 :]


class _NoDtd(Exception):
    """A document type declaration in a statement: refused before anything in it is read."""


def _refuse_dtd(*_: Any) -> None:
    raise _NoDtd


class _CamtReader:
    """camt.053 read incrementally: the document's elements are let go of as soon
    as they are read, so memory holds one entry (Ntry) and the elements around
    it, whatever the file's size.

    Two parsers read the same bytes: a bare expat parser that stops at the root
    element and refuses a DTD before any of it is read, and the pull parser that
    builds each entry. An entry that cannot be read is reported after the
    document is read to its end, so a document that is not well-formed XML
    (cut off, say) is reported as such."""

    def __init__(self, source: StatementFile):
        self.source = source
        self.statement = source.statement
        self.name = source.path.name
        self.stack: list[ET.Element] = []
        self.block: ET.Element | None = None
        self.blocks = 0
        self.number = 0
        self.failure: InvalidStatement | None = None
        self.root_seen = False

    def entries(self, meter: _Metered) -> Iterator[Entry]:
        guard = expat.ParserCreate()
        guard.StartDoctypeDeclHandler = _refuse_dtd
        guard.EntityDeclHandler = _refuse_dtd
        guard.StartElementHandler = self._root_started
        pull: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
        path = self.source.path
        try:
            while chunk := meter.read(_CHUNK):
                if not self.root_seen:
                    guard.Parse(chunk, False)
                pull.feed(chunk)
                yield from self._events(pull)
            if not self.root_seen:
                guard.Parse(b"", True)
            pull.close()
            yield from self._events(pull)
        except _NoDtd:
            raise InvalidStatement(
                f"{path}: a document type declaration (<!DOCTYPE>) is not allowed in a statement"
            ) from None
        except (expat.ExpatError, ET.ParseError) as error:
            raise InvalidStatement(f"{path}: not readable XML ({error})") from None
        if self.failure is not None:
            raise self.failure
        if not self.blocks:
            raise InvalidStatement(f"{path}: no camt.053 statement (Stmt) in this XML")
        self.statement.statements = self.blocks

    def _root_started(self, *_: Any) -> None:
        self.root_seen = True

    def _events(self, pull: ET.XMLPullParser[ET.Element]) -> Iterator[Entry]:
        stack = self.stack
        events = cast(Iterator[tuple[str, ET.Element]], pull.read_events())  # only start and end were asked for
        for event, element in events:
            if event == "start":
                stack.append(element)
                if self.block is None and _local(element.tag) in _BLOCKS:
                    self.block, self.blocks, self.number = element, self.blocks + 1, 0
                continue
            stack.pop()
            parent = stack[-1] if stack else None
            if parent is None:
                continue
            if parent is self.block:
                read: list[Entry] = []
                if self.failure is None:
                    try:
                        read = self._block_child(element)
                    except InvalidStatement as failure:
                        self.failure = failure
                parent.remove(element)
                yield from read
            elif element is self.block or self.block is None:
                if element is self.block:
                    self.block = None
                parent.remove(element)

    def _block_child(self, element: ET.Element) -> list[Entry]:
        name = _local(element.tag)
        if name == "Ntry":
            self.number += 1
            _strip_namespaces(element)
            where = f"{self.name} entry {self.number}"
            if self.blocks > 1:
                where = f"{self.name} statement {self.blocks} entry {self.number}"
            return self._entries(element, where)
        if name == "FrToDt":
            _strip_namespaces(element)
            where = f"{self.source.path} statement {self.blocks}"
            start = parse_day(_text(element, "FrDtTm") or _text(element, "FrDt"), where)
            end = parse_day(_text(element, "ToDtTm") or _text(element, "ToDt"), where)
            statement = self.statement
            if start:
                statement.period_from = min(filter(None, (statement.period_from, start)))
            if end:
                statement.period_to = max(filter(None, (statement.period_to, end)))
        return []

    def _entries(self, node: ET.Element, where: str) -> list[Entry]:
        status = (_text(node, "Sts", "Cd") or _text(node, "Sts") or "BOOK").upper()
        amount_node = _find(node, "Amt")
        if amount_node is None:
            raise InvalidStatement(f"{where}: no Amt")
        direction = _direction(_text(node, "CdtDbtInd"), where)
        amount = parse_amount(amount_node.text or "", where)
        currency = _currency(amount_node.get("Ccy"))
        value_date = parse_day(_date_of(_find(node, "ValDt")), where)
        booking_date = parse_day(_date_of(_find(node, "BookgDt")), where)
        bank_id = _text(node, "NtryRef") or _text(node, "AcctSvcrRef")
        identifier = bank_id or where
        reversal = (_text(node, "RvslInd") or "").lower() == "true"
        transactions = [tx for details in _children(node, "NtryDtls") for tx in _children(details, "TxDtls")]
        if status not in ("BOOK", "BOOKED"):
            self.statement.skipped += 1
            remittance = _remittance(transactions, [node])
            self.statement.unbooked.append(
                Unbooked(
                    id=identifier,
                    status=status,
                    direction=direction,
                    amount=amount,
                    currency=currency,
                    value_date=value_date or booking_date,
                    reference=remittance.reference,
                    description=remittance.description,
                    reversal=reversal,
                )
            )
            return []
        if value_date is None and booking_date is None:
            raise InvalidStatement(f"{where}: neither a value date (ValDt) nor a booking date (BookgDt)")
        common = {"value_date": value_date or booking_date, "booking_date": booking_date, "reversal": reversal}
        whole = _remittance(transactions, [node]).entry(identifier, direction, amount, currency, common)
        if bank_id is not None and not self.source.first_time(whole, self.blocks):
            return []
        amounts = [found for found in map(_tx_amount, transactions) if found is not None]
        if len(transactions) < 2 or len(amounts) < len(transactions):
            return [whole]  # split only when every transaction states its amount
        parts = []
        for index, (tx, tx_amount) in enumerate(zip(transactions, amounts, strict=True), start=1):
            tx_direction = _text(tx, "CdtDbtInd")
            parts.append(
                _remittance([tx], []).entry(
                    _text(tx, "Refs", "AcctSvcrRef") or f"{identifier}/{index}",
                    _direction(tx_direction, where) if tx_direction else direction,
                    parse_amount(tx_amount.text or "", f"{where} transaction {index}"),
                    _currency(tx_amount.get("Ccy") or amount_node.get("Ccy")),
                    common,
                )
            )
        added = sum(part.amount if part.direction == direction else -part.amount for part in parts)
        foreign = tuple(sorted({part.currency for part in parts} - {currency}))
        if added != amount or foreign:
            self.statement.batch_mismatches.append(BatchMismatch(whole, added, len(parts), foreign))
            return []
        return parts


def _tx_amount(tx: ET.Element) -> ET.Element | None:
    direct = _find(tx, "Amt")  # an Element without children is falsy: compare with None
    return direct if direct is not None else _find(tx, "AmtDtls", "TxAmt", "Amt")


@dataclass(slots=True)
class _Remittance:
    """What the transactions of an entry say of the payment: reference and text."""

    reference: str | None
    reference_text: str | None
    description: str

    def entry(self, identifier: str, direction: str, amount: int, currency: str, common: dict[str, Any]) -> Entry:
        return Entry(
            id=identifier,
            direction=direction,
            amount=amount,
            currency=currency,
            reference=self.reference,
            reference_text=self.reference_text,
            description=self.description,
            **common,
        )


def _remittance(transactions: list[ET.Element], extra_nodes: list[ET.Element]) -> _Remittance:
    structured = [r for tx in transactions for r in _all_text(tx, "RmtInf", "Strd", "CdtrRefInf", "Ref")]
    unstructured = [t for tx in transactions for t in _all_text(tx, "RmtInf", "Ustrd")]
    names = [
        n
        for tx in transactions
        for n in _all_text(tx, "RltdPties", "Dbtr", "Nm") + _all_text(tx, "RltdPties", "Cdtr", "Nm")
    ]
    extra = [t for tx in transactions for t in _all_text(tx, "AddtlTxInf")]
    extra += [t for n in extra_nodes for t in _all_text(n, "AddtlNtryInf")]
    reference = next((found for found in map(structured_reference, structured) if found), None)
    if reference is None and not structured:
        reference = reference_in_text(" ".join(unstructured))
    return _Remittance(reference, structured[0] if structured else None, " | ".join(unstructured + names + extra))


# ---------------------------------------------------------------------- CSV


def _read_csv(source: StatementFile, meter: _Metered) -> Iterator[Entry]:
    """A CSV statement: value_date, amount, direction, reference, description (header required)."""
    path, name = source.path, source.path.name
    with path.open("rb") as head:
        sample = head.read(4096).decode("utf-8-sig", errors="replace")
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    text = io.TextIOWrapper(io.BufferedReader(meter, _CHUNK), encoding="utf-8-sig", newline="")
    reader = csv.reader(text, dialect)
    try:
        header = next(reader, None) or []
        columns = {cell.strip().lower(): index for index, cell in enumerate(header)}
        missing = [c for c in ("value_date", "amount", "direction") if c not in columns]
        if missing:
            raise InvalidStatement(
                f"{path}: columns {', '.join(missing)} missing "
                "(expected value_date, amount, direction, reference, description)"
            )
        width = len(header)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < width:
                row += [""] * (width - len(row))
            entry = _csv_entry(row, columns, name, reader.line_num)
            if "id" in columns and row[columns["id"]].strip() and not source.first_time(entry, 1):
                continue
            yield entry
    except UnicodeDecodeError as error:
        raise InvalidStatement(f"{path}: not UTF-8 text ({error.reason}) after line {reader.line_num}") from None
    except csv.Error as error:
        raise InvalidStatement(f"{name} line {reader.line_num}: {error}") from None


def _csv_entry(row: list[str], columns: dict[str, int], name: str, line: int) -> Entry:
    where = f"{name} line {line}"

    def cell(column: str) -> str:
        index = columns.get(column)
        return row[index].strip() if index is not None else ""

    raw_reference = cell("reference")
    description = cell("description")
    reference = structured_reference(raw_reference) if raw_reference else reference_in_text(description)
    value_date = parse_day(cell("value_date"), where)
    if value_date is None:
        raise InvalidStatement(f"{where}: no value_date")
    return Entry(
        id=cell("id") or f"line {line}",
        direction=_direction(cell("direction"), where),
        amount=parse_amount(cell("amount"), where),
        value_date=value_date,
        booking_date=parse_day(cell("booking_date"), where),
        reference=reference,
        reference_text=raw_reference or None,
        description=description,
        currency=_currency(cell("currency")),
    )
