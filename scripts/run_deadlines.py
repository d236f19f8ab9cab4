"""``kmo-ledger run-deadlines``: apply every deadline passed at the clock's
Brussels date and print what lapsed or closed (the rule and the deadline).

Each lapse is an event dated the first day after its deadline, not the day of
the run, so running late changes nothing in the history. Running twice finds
nothing the second time.
"""

from __future__ import annotations

from typing import Any

from scripts import common as cli

PROG = "kmo-ledger run-deadlines"


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _run(argv))


def _run(argv: list[str] | None) -> int:
    parser = cli.parser("run-deadlines", "Apply every deadline passed; print what lapsed or closed.")
    args = parser.parse_args(argv)
    with cli.open_ledger() as ledger:
        reports = ledger.run_deadlines()
    lapsed = [
        {
            "enterprise_number": report.enterprise_number,
            "application_id": report.application_id,
            "rule": report.rule,
            "deadline": report.deadline.isoformat(),
        }
        for report in reports
    ]
    if args.json:
        cli.print_json({"lapsed": lapsed})
    else:
        show(lapsed)
    return cli.EXIT_OK


def show(lapsed: list[dict[str, Any]]) -> None:
    out = cli.console()
    if lapsed:
        out.print(
            cli.table(
                "Lapsed or closed",
                ["enterprise", "application", "rule", "deadline"],
                ([r["enterprise_number"], r["application_id"], r["rule"], r["deadline"]] for r in lapsed),
            )
        )
    out.print(f"{len(lapsed)} application(s) lapsed or closed")
