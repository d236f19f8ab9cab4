"""``kmo-ledger replay ENTERPRISE [--as-of DATE]``: a wallet's timeline and its
state on a date, under the rules in force then.

Each event records the regime, rate and capped subsidy decided when it
happened, so the replay reads no rule table: a wallet replayed in ten years
shows the same amounts. The timeline shows every event up to the date with
the amount it moved and the held balances after it.
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

    from ledger.domain.clock import brussels_date
    from ledger.domain.identifiers import canonical_enterprise_number

    enterprise = canonical_enterprise_number(args.enterprise)
    with cli.open_ledger() as ledger:
        as_of = args.as_of or brussels_date(ledger.clock.now())
        events = ledger.wallet_events(enterprise, as_of)
        state = ledger.replay(enterprise, as_of)
    report = {"enterprise_number": enterprise, "as_of": as_of.isoformat(), **replay_report(events, state)}
    if args.json:
        cli.print_json(report)
    else:
        show(report)
    return cli.EXIT_OK


def replay_report(events: list[Any], state: dict[str, Any]) -> dict[str, Any]:
    """The timeline (one row per event, balances after it) and the state, its
    applications completed with the regime, rate and balances they were decided with."""
    from ledger.audit.replay import replay_steps
    from ledger.domain.money import format_euro
    from ledger.domain.state import AT_FINANCIAL_MANAGER
    from ledger.summaries import application_view, balances

    timeline, totals = [], {}
    folded = None
    for event, folded in replay_steps(events):
        for leg in getattr(event, "legs", ()):
            if leg.account in AT_FINANCIAL_MANAGER:
                totals[leg.account] = totals.get(leg.account, 0) + leg.amount
        amount, detail = describe(event, folded)
        application = folded.applications.get(getattr(event, "application_id", None) or "")
        timeline.append(
            {
                "sequence": event.originator_version,
                "business_date": event.business_date.isoformat(),
                "recorded_at": event.timestamp.isoformat(),
                "type": type(event).__name__,
                "application_id": application.application_id if application else None,
                "project_number": application.project_number if application else None,
                "amount": None if amount is None else format_euro(amount),
                "detail": detail,
                **balances(totals),
            }
        )
    decided = {}
    if folded is not None:
        for application in folded.applications.values():
            view = application_view(application)
            decided[application.application_id] = {
                key: view[key]
                for key in ("regime", "amendments", "year", "size", "rate", "eligible_cost", "held", "paid_out", "due")
            }
    state = dict(state)
    state["applications"] = [a | decided.get(a["application_id"], {}) for a in state.get("applications", [])]
    return {"timeline": timeline, "state": state}


def describe(event: Any, state: Any) -> tuple[int | None, str]:
    """The amount an event moved (cents, or None) and one line in the rule book's words."""
    from ledger.domain import events as ev
    from ledger.domain.money import format_euro
    from ledger.summaries import rate_percent

    def euro(cents: int) -> str:
        return format_euro(cents)

    if isinstance(event, ev.WalletOpened):
        return None, f"wallet of {event.name}, {event.size} enterprise (figures {event.figures_year})"
    if isinstance(event, ev.SmeFiguresFiled):
        return None, f"SME figures of {event.year} filed: {event.size}"
    if isinstance(event, ev.ApplicationSubmitted):
        capped = f", capped by {event.capped_by}" if event.capped_by else ""
        return event.subsidy, (
            f"{event.service} from {event.provider}, regime {event.regime}, rate {rate_percent(event.rate)}%, "
            f"eligible {euro(event.eligible_cost)}, subsidy {euro(event.subsidy)}{capped}, "
            f"own share {euro(event.own_share)}, reference {event.payment_reference}"
        )
    if isinstance(event, ev.ApplicationConfirmed):
        due = f", own share due by {event.deposit_by}" if event.deposit_by else ""
        return None, f"confirmed by the provider{due}"
    if isinstance(event, ev.EventReversed):
        return _moved_out(event), f"reverses event {event.reversed_sequence} ({event.reversed_type}): {event.reason}"
    if isinstance(event, ev.Ending):
        why = {
            ev.ApplicationRefused: lambda e: f"refused by the provider: {e.reason}",
            ev.ApplicationLapsed: lambda e: f"lapsed: {e.rule} deadline {e.deadline} passed",
            ev.ProjectClosed: lambda e: f"closed: {e.rule} deadline {e.deadline} passed",
            ev.ProjectStopped: lambda e: f"stopped: {e.reason}",
        }[type(event)](event)
        freed = f", ceiling freed {euro(event.ceiling_freed)}" if event.ceiling_freed else ""
        return _moved_out(event), f"{why}; held money falls due{freed}"
    if isinstance(event, ev.OwnShareDeposited):
        return event.amount, f"own share received, reference {event.payment_reference}, value date {event.value_date}"
    if isinstance(event, ev.SubsidyToppedUp):
        return event.amount, f"subsidy received from the government, value date {event.value_date}"
    if isinstance(event, ev.PayoutOrdered):
        return event.amount, (
            f"payout ordered: own share part {euro(event.own_share_part)}, subsidy part {euro(event.subsidy_part)}"
        )
    if isinstance(event, ev.PayoutExecuted):
        return event.amount, f"paid to the provider, value date {event.value_date}"
    if isinstance(event, ev.RecoveryIssued):
        return event.amount, f"recovery issued to the {event.debtor}: {event.reason}"
    if isinstance(event, ev.RecoveryRepaid):
        return event.amount, f"recovery repaid, value date {event.value_date}"
    if isinstance(event, ev.RefundExecuted):
        return event.amount, f"{event.kind.replace('_', ' ')}, value date {event.value_date}"
    if isinstance(event, ev.ServiceCompleted):
        return None, f"service completed on {event.completed_on}"
    return None, ""


def _moved_out(event: Any) -> int | None:
    moved = sum(leg.amount for leg in event.legs if leg.amount > 0)
    return moved or None


def show(report: dict[str, Any]) -> None:
    out = cli.console()
    state = report["state"]
    out.print(
        f"Wallet {report['enterprise_number']} ({state['name']}) as of {report['as_of']}, "
        f"version {state['version']}"
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
        f"Held: own share {state['held']['own_share']}, subsidy {state['held']['subsidy']}; "
        f"due: enterprise {state['due']['enterprise']}, government {state['due']['government']}; sizes: {sizes}"
    )
    out.print(
        cli.table(
            "Applications",
            [
                "project", "service", "regime", "rate %", "state",
                "subsidy", "own share", "held own share", "held subsidy",
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
