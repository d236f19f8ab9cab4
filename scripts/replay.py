"""``kmo-ledger replay ENTERPRISE [--as-of DATE]``: a wallet's timeline and its
state on a date, under the rules in force then.

Each event records the regime, rate and capped subsidy decided when it
happened, so the replay reads no rule table: a wallet replayed in ten years
shows the same amounts. The timeline shows every event up to the date with
the amount it moved and the held balances after it
(:mod:`ledger.audit.replay`).
"""

from __future__ import annotations

from typing import Any

from scripts import common as cli

PROG = "kmo-ledger replay"


def main(argv: list[str] | None = None) -> int:
    return cli.run(PROG, lambda: _replay(argv))


def _replay(argv: list[str] | None) -> int:
    parser = cli.parser("replay", "A wallet's timeline and its state as of a date (default today, Brussels).")
    parser.add_argument("enterprise", metavar="ENTERPRISE", help="enterprise number, any common spelling")
    parser.add_argument("--as-of", type=cli.iso_date, metavar="DATE", help="business date YYYY-MM-DD")
    args = parser.parse_args(argv)

    from ledger.audit.replay import wallet_replay
    from ledger.domain.identifiers import canonical_enterprise_number

    enterprise = canonical_enterprise_number(args.enterprise)
    with cli.open_ledger() as ledger:
        report = wallet_replay(ledger, enterprise, args.as_of)
    if args.json:
        cli.print_json(report)
    else:
        show(report)
    return cli.EXIT_OK


def show(report: dict[str, Any]) -> None:
    out = cli.console()
    state = report["state"]
    out.print(
        cli.printable(
            f"Wallet {report['enterprise_number']} ({state['name']}) as of {report['as_of']}, "
            f"version {state['version']}"
        )
    )
    out.print(
        cli.table(
            "Timeline",
            ["#", "date", "event", "project", "amount", "held own share", "held subsidy", "detail"],
            (
                [
                    row["sequence"],
                    row["business_date"],
                    row["type"],
                    row["project_number"],
                    row["amount"],
                    row["held"]["own_share"],
                    row["held"]["subsidy"],
                    row["detail"],
                ]
                for row in report["timeline"]
            ),
            right=("#", "amount", "held own share", "held subsidy"),
        )
    )
    sizes = ", ".join(f"{year} {size}" for year, size in state["sizes"].items())
    out.print(
        cli.printable(
            f"Held: own share {state['held']['own_share']}, subsidy {state['held']['subsidy']}; "
            f"due: enterprise {state['due']['enterprise']}, government {state['due']['government']}; sizes: {sizes}"
        )
    )
    out.print(
        cli.table(
            "Applications",
            [
                "project",
                "service",
                "regime",
                "rate %",
                "state",
                "subsidy",
                "own share",
                "held own share",
                "held subsidy",
            ],
            (
                [
                    a["project_number"],
                    a["service"],
                    a.get("regime"),
                    a.get("rate"),
                    a["state"],
                    a["subsidy"],
                    a["own_share"],
                    a.get("held", {}).get("own_share"),
                    a.get("held", {}).get("subsidy"),
                ]
                for a in state["applications"]
            ),
            right=("rate %", "subsidy", "own share", "held own share", "held subsidy"),
        )
    )
    out.print(
        cli.table(
            "Ceilings (steunplafond)",
            ["year", "ceiling", "amount", "reserved", "used", "freed", "remaining"],
            (
                [c["year"], c["key"], c["ceiling"], c["reserved"], c["used"], c["freed"], c["remaining"]]
                for c in state["ceilings"]
            ),
            right=("amount", "reserved", "used", "freed", "remaining"),
        )
    )
