"""``kmo-ledger reconcile --statement FILE``: the financial manager's bank
statement (camt.053 XML or CSV) against the ledger's money events.

Reading the statement is :mod:`ledger.reconciliation.statements`; the ledger's
postings, the matching and the report are :mod:`ledger.reconciliation.matching`.
This command reads the ledger for the days the statement speaks of and prints
the report: matched pairs, amount differences, money returned to the payer,
and what is unmatched on either side. Exit 1 on any difference or anything
unmatched; 2 when the statement cannot be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scripts import common as cli

PROG = "kmo-ledger reconcile"


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _reconcile(argv))


def _reconcile(argv: list[str] | None) -> int:
    parser = cli.parser("reconcile", "Match a bank statement (camt.053 or CSV) against the ledger.")
    parser.add_argument("--statement", metavar="FILE", type=Path, required=True, help="camt.053 XML or CSV")
    args = parser.parse_args(argv)

    from ledger.reconciliation.matching import as_report, ledger_postings, reconcile
    from ledger.reconciliation.statements import read_statement

    statement = read_statement(args.statement)
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
