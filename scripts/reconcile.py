"""``kmo-ledger reconcile --statement FILE``: the financial manager's bank
statement (camt.053 XML or CSV) against the ledger's money events.

Reading the statement is :mod:`ledger.reconciliation.statements`; the ledger's
postings, the matching and the report are :mod:`ledger.reconciliation.matching`.
This command reads the ledger for the days the statement speaks of and prints
the report: matched pairs, amount differences, money returned to the payer,
what is unmatched on either side, entries not booked, reversals, batches that
do not add up and entry ids met twice, with totals per currency. Exit 1 on any
finding; 2 when the statement cannot be read or is larger than ``--max-bytes``.
On a terminal, standard error shows how much of the statement is read.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scripts import common as cli

PROG = "kmo-ledger reconcile"
FINDINGS = ("differences", "unmatched_statement", "unmatched_ledger", "reversed", "batch_mismatches", "duplicate_ids")
"""The parts of the report that make it not reconciled."""
_UNITS = {"": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3}


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _reconcile(argv))


def _reconcile(argv: list[str] | None) -> int:
    parser = cli.parser("reconcile", "Match a bank statement (camt.053 or CSV) against the ledger.")
    parser.add_argument("--statement", metavar="FILE", type=Path, required=True, help="camt.053 XML or CSV")
    parser.add_argument(
        "--max-bytes",
        metavar="SIZE",
        type=byte_count,
        default=None,
        help="refuse a statement file larger than this, in bytes or with a unit: 200MiB, 2GiB (default 512MiB)",
    )
    args = parser.parse_args(argv)

    from ledger.reconciliation.matching import as_report, ledger_postings, reconcile
    from ledger.reconciliation.statements import MAX_BYTES, StatementFile, StatementTooLarge

    try:
        source = StatementFile(args.statement, max_bytes=args.max_bytes or MAX_BYTES)
        with reading(source.path.name, source.size) as advance:
            statement = source.read(advance)
    except StatementTooLarge as refused:
        raise cli.UsageError(f"{refused.detail} (see --max-bytes)") from None
    first, last = statement.fill_period()
    with cli.open_ledger() as ledger:
        postings = ledger_postings(ledger, first, last)
        result = reconcile(statement, postings, ledger.payment_reference_owner)
    report = as_report(result)
    if args.json:
        cli.print_json(report)
    else:
        show(report)
    return cli.EXIT_OK if result.ok else cli.EXIT_PROBLEM


def byte_count(text: str) -> int:
    """An argparse type: a positive size in bytes, or with a unit (``512MiB``, ``2G``)."""
    found = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    unit = found.group(2).lower() if found else ""
    if not found or unit not in _UNITS or int(found.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (bytes, or with KiB, MiB, GiB)")
    return int(found.group(1)) * _UNITS[unit]


@contextmanager
def reading(name: str, size: int) -> Iterator[Callable[[int], None] | None]:
    """Yields ``advance(bytes)``: a progress bar over the bytes read, on standard
    error and removed when done, only when standard error is a terminal; else
    None, and nothing is drawn."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TimeRemainingColumn(),
        console=cli.console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(f"reading {cli.printable(name)}", total=size)
        yield lambda count: bar.advance(task, count)


def show(report: dict[str, Any]) -> None:
    out = cli.console()
    s = report["statement"]
    others = {currency: t for currency, t in report["totals"].items() if currency != "EUR"}
    line = (
        f"Statement {s['file']} ({s['format']}), {s['from']} to {s['to']}: {s['entries']} entries, "
        f"credits {s['credits']}, debits {s['debits']}"
    )
    if others:
        line += " in EUR; " + "; ".join(
            f"{t['entries']} in {currency}: credits {t['credits']}, debits {t['debits']}"
            for currency, t in others.items()
        )
    out.print(line)

    def entry_cells(e: dict[str, Any]) -> list[Any]:
        return [e["id"], e["value_date"], e["direction"], e["amount"], e["reference"] or e["description"][:40]]

    def event_cells(p: dict[str, Any]) -> list[Any]:
        return [p["enterprise_number"], p["sequence"], p["type"], p["amount"], p["value_date"]]

    entry_columns = ["entry", "value date", "direction", "amount", "reference"]
    event_columns = ["wallet", "event", "type", "ledger amount", "ledger date"]
    money = ("amount", "ledger amount", "difference", "transactions")  # right-aligned wherever they stand
    # each part of the report: its key, its title, its columns and the cells of one row
    sections: list[tuple[str, str, list[str], Callable[[dict[str, Any]], list[Any]]]] = [
        ("matched", "Matched", entry_columns + event_columns + ["note"],
         lambda m: entry_cells(m["entry"]) + event_cells(m["event"]) + [m["note"]]),
        ("differences", "Amount differences", entry_columns + event_columns + ["difference"],
         lambda d: entry_cells(d["entry"]) + event_cells(d["event"]) + [d["difference"]]),
        ("returned", "Returned to payer", entry_columns + ["returned by", "return date"],
         lambda r: entry_cells(r["entry"]) + [r["return"]["id"], r["return"]["value_date"]]),
        ("unmatched_statement", "Statement entries with no ledger event", entry_columns + ["finding"],
         lambda u: entry_cells(u["entry"]) + [u["reason"]]),
        ("unmatched_ledger", "Ledger events with no statement entry", event_columns + ["project", "finding"],
         lambda u: event_cells(u["event"]) + [u["event"]["project_number"], u["reason"]]),
        ("pending", "Not booked (pending or information only): not matched", entry_columns + ["status", "finding"],
         lambda p: entry_cells(p["entry"]) + [p["entry"]["status"], p["reason"]]),
        ("reversed", "Reversals: not matched as settled money", entry_columns + ["finding"],
         lambda r: entry_cells(r["entry"]) + [r["reason"]]),
        ("batch_mismatches", "Batches whose transactions do not add up: not matched",
         entry_columns + ["transactions", "difference", "finding"],
         lambda b: entry_cells(b["entry"]) + [b["transactions_total"], b["difference"], b["reason"]]),
        ("duplicate_ids", "Entry ids met twice in the file: not matched again",
         entry_columns + ["statement", "finding"],
         lambda d: entry_cells(d["entry"]) + [d["statement"], d["reason"]]),
    ]  # fmt: skip
    for key, title, columns, cells in sections:
        if report[key]:
            out.print(cli.table(title, columns, (cells(row) for row in report[key]), right=money))
    problems = sum(len(report[name]) for name in FINDINGS)
    verdict = "reconciled" if report["ok"] else f"NOT reconciled: {problems} finding(s)"
    extra = "".join(
        f", {len(report[name])} {label}"
        for name, label in (
            ("pending", "not booked"),
            ("reversed", "reversal(s)"),
            ("batch_mismatches", "batch(es) not adding up"),
            ("duplicate_ids", "entry id(s) met twice"),
        )
        if report[name]
    )
    out.print(
        f"{len(report['matched'])} matched, {len(report['differences'])} amount difference(s), "
        f"{len(report['returned'])} returned, {len(report['unmatched_statement'])} unmatched on the statement, "
        f"{len(report['unmatched_ledger'])} unmatched in the ledger{extra}: {verdict}"
    )
