"""``kmo-ledger purge-audit-trail --before DATE``: remove audit-trail rows with a
business date before DATE from the read model (the events are never touched).

Refused, with nothing purged and exit 1, if any such row is still inside its
retention period (``retain_until`` on or after today, Brussels date) or was
never exported (``kmo-ledger export`` records what it exported).
"""

from __future__ import annotations

import sys

from scripts import common as cli

PROG = "kmo-ledger purge-audit-trail"


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _run(argv))


def _run(argv: list[str] | None) -> int:
    parser = cli.parser("purge-audit-trail", "Purge exported audit-trail rows past retention.")
    parser.add_argument(
        "--before",
        type=cli.iso_date,
        required=True,
        metavar="DATE",
        help="purge rows with a business date before DATE (YYYY-MM-DD)",
    )
    args = parser.parse_args(argv)
    from projections.audit import PurgeRefused, purge_audit_trail

    try:
        result = purge_audit_trail(cli.database_url(), args.before)
    except PurgeRefused as refusal:
        if args.json:
            cli.print_json({"purged": 0, "refused": str(refusal)})
        sys.stderr.write(f"{PROG}: {refusal}\n")
        return cli.EXIT_PROBLEM
    if args.json:
        cli.print_json(
            {
                "purged": result.rows_purged,
                "before": result.before.isoformat(),
                "through_position": result.through_position,
            }
        )
    else:
        cli.console().print(f"Purged {result.rows_purged} audit-trail row(s) dated before {result.before}")
    return cli.EXIT_OK
