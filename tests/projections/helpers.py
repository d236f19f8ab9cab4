"""Narrated scenarios for the projections, and the ledger's own fold as the oracle.

Each scenario takes a ``step`` callable, called after every command, so a test
can catch the views up event by event (incrementally) or not at all (a
rebuild at the end).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta

from freezegun import freeze_time

from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain.money import format_euro, parse_euro
from ledger.domain.regimes import RECORD_RETENTION_YEARS
from ledger.domain.rules import retain_until
from ledger.domain.state import account_kind
from projections.queries import Queries
from tests.conftest import BACK_OFFICE, OTHER_ENTERPRISE, sme
from tests.scenarios.helpers import Story

Step = Callable[[], None]


def _nothing() -> None:
    pass


def refund(story: Story, application_id: str, kind: str, amount: str, value_date: date) -> None:
    story.ledger.handle(
        story.en,
        application_id,
        c.ExecuteRefund(kind=kind, amount=parse_euro(amount), value_date=value_date),
        BACK_OFFICE,
    )


def full_life(ledger: KmoLedger, step: Step = _nothing) -> Story:
    """A training submitted, funded, paid out in two parts and completed."""
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        step()
        application_id = story.submit(date(2026, 3, 16))
        step()
    with freeze_time("2026-03-05 10:00:00"):
        story.confirm(application_id)
        step()
        story.deposit(application_id, date(2026, 3, 5))
        step()
        story.top_up(application_id, date(2026, 3, 5))
        step()
    with freeze_time("2026-04-01 10:00:00"):
        story.pay(application_id, "4000.00", date(2026, 4, 1))
        step()
        story.pay(application_id, "6000.00", date(2026, 4, 1))
        step()
    with freeze_time("2026-05-01 10:00:00"):
        ledger.handle(story.en, application_id, c.CompleteService(completed_on=date(2026, 4, 30)), BACK_OFFICE)
        step()
    return story


def stop(ledger: KmoLedger, step: Step = _nothing) -> Story:
    """A partial payout, a stop for another reason: a recovery, repaid in two parts;
    then the refunds are executed, one of them reversed and posted again."""
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 20))
        step()
        story.fund(application_id, date(2026, 3, 2))
        step()
    with freeze_time("2026-04-01 09:00:00"):
        story.pay(application_id, "4000.00", date(2026, 4, 1))
        step()
        story.stop(application_id, "other")
        step()
    with freeze_time("2026-04-10 09:00:00"):
        for amount in ("700.00", "500.00"):
            ledger.handle(
                story.en,
                application_id,
                c.RepayRecovery(amount=parse_euro(amount), value_date=date(2026, 4, 9)),
                BACK_OFFICE,
            )
            step()
    with freeze_time("2026-04-12 09:00:00"):
        refund(story, application_id, "own_share_to_enterprise", "4200.00", date(2026, 4, 12))
        step()
        reverse_last(story, application_id, "wrong account")
        step()
        refund(story, application_id, "own_share_to_enterprise", "4200.00", date(2026, 4, 12))
        step()
        refund(story, application_id, "subsidy_to_government", "1000.00", date(2026, 4, 12))
        step()
    return story


def lapse(ledger: KmoLedger, step: Step = _nothing) -> Story:
    """Three applications: one never answered, one confirmed but never paid, one
    refused after its deposit; and a second wallet that opens a year later."""
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        unanswered = story.submit(date(2026, 3, 20), fee="2000.00")
        step()
        unpaid = story.submit(date(2026, 3, 20), fee="3000.00")
        step()
        story.confirm(unpaid)
        step()
        refused = story.submit(date(2026, 3, 20), fee="1000.00")
        step()
        story.deposit(refused, date(2026, 3, 2))
        step()
        ledger.handle(story.en, refused, c.RefuseApplication(reason="related parties"), BACK_OFFICE)
        step()
    with freeze_time("2026-03-20 09:00:00"):
        assert [r.application_id for r in ledger.run_deadlines()] == [unanswered]
        step()
    with freeze_time("2026-04-07 09:00:00"):
        assert [r.application_id for r in ledger.run_deadlines()] == [unpaid]
        step()
        refund(story, refused, "own_share_to_enterprise", "700.00", date(2026, 4, 7))
        step()
    with freeze_time("2027-02-01 09:00:00"):
        other = Story(ledger, OTHER_ENTERPRISE)
        step()
        other.submit(date(2027, 2, 20))
        step()
    return story


def reversals(ledger: KmoLedger, step: Step = _nothing) -> Story:
    """New SME figures filed; a deposit and a payout each reversed and posted again."""
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        ledger.file_sme_figures(story.en, c.FileSmeFigures(year=2025, sme=sme(fte=12)), BACK_OFFICE)
        step()
        application_id = story.submit(date(2026, 3, 20))
        step()
        story.confirm(application_id)
        step()
        story.deposit(application_id, date(2026, 3, 2))
        step()
        reverse_last(story, application_id, "wrong wallet")
        step()
        story.deposit(application_id, date(2026, 3, 2))
        step()
        story.top_up(application_id, date(2026, 3, 2))
        step()
    with freeze_time("2026-04-01 09:00:00"):
        story.pay(application_id, "4000.00", date(2026, 4, 1))
        step()
        reverse_last(story, application_id, "paid the wrong provider")
        step()
        story.pay(application_id, "2500.00", date(2026, 4, 1))
        step()
    return story


def payout_orders(ledger: KmoLedger, step: Step = _nothing) -> Story:
    """Payout orders: one executed, one left waiting, one executed then reversed
    (waiting again), and the waiting orders of a stopped project cancelled."""
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        paying = story.submit(date(2026, 3, 20))
        step()
        stopping = story.submit(date(2026, 3, 20), fee="5000.00")
        step()
        story.fund(paying, date(2026, 3, 2))
        step()
        story.fund(stopping, date(2026, 3, 2))
        step()
    with freeze_time("2026-03-05 09:00:00"):
        story.pay(paying, "2000.00", date(2026, 3, 5))
        step()
        story.order(paying, "1000.00")
        step()
        story.order(stopping, "500.00")
        step()
    with freeze_time("2026-03-09 09:00:00"):
        story.pay(paying, "1500.00", date(2026, 3, 9))
        step()
        reverse_last(story, paying, "paid twice")
        step()
        story.stop(stopping, "on_request")
        step()
    return story


def late_endings(ledger: KmoLedger, step: Step = _nothing) -> Story:
    """Endings after their year: an application of late December whose provider
    never answers lapses in January (its subsidy lost to its year); a funded one
    takes a payout order on its completion deadline, is closed with that order
    kept, which is executed after the closure; a completed one with money held
    waits for the closure."""
    with freeze_time("2025-03-03 09:00:00"):
        story = Story(ledger)
        closed = story.submit(date(2025, 3, 17), fee="2000.00")
        step()
        story.fund(closed, date(2025, 3, 3))
        step()
        completed = story.submit(date(2025, 3, 17), fee="1000.00")
        step()
        story.fund(completed, date(2025, 3, 3))
        step()
    with freeze_time("2025-03-20 09:00:00"):
        ledger.handle(story.en, completed, c.CompleteService(completed_on=date(2025, 3, 19)), BACK_OFFICE)
        step()
    with freeze_time("2025-12-24 09:00:00"):
        unanswered = story.submit(date(2026, 1, 5), fee="500.00")
        step()
    with freeze_time("2026-01-08 09:00:00"):
        assert [r.application_id for r in ledger.run_deadlines()] == [unanswered]
        step()
    with freeze_time("2026-12-31 09:00:00"):
        order_id = story.order(closed, "1000.00")
        step()
    with freeze_time("2027-01-04 09:00:00"):
        assert {r.application_id for r in ledger.run_deadlines()} == {closed, completed}
        step()
        ledger.handle(story.en, closed, c.ExecutePayout(order_id=order_id, value_date=date(2027, 1, 4)), BACK_OFFICE)
        step()
    return story


def reverse_last(story: Story, application_id: str, reason: str) -> None:
    sequence = story.ledger.wallet_events(story.en)[-1].originator_version
    story.ledger.handle(story.en, application_id, c.ReverseEvent(sequence=sequence, reason=reason), BACK_OFFICE)


SCENARIOS = {
    "full_life": full_life,
    "stop": stop,
    "lapse": lapse,
    "reversals": reversals,
    "payout_orders": payout_orders,
    "late_endings": late_endings,
}


# --------------------------------------------------------------------------- the oracle


def differences_from_ledger(ledger: KmoLedger, views: Queries, enterprises: list[str]) -> list[str]:
    """Every view against what the ledger's own fold (:mod:`ledger.summaries`) says."""
    problems: list[str] = []

    def same(what: str, expected, actual) -> None:
        if expected != actual:
            problems.append(f"{what}: ledger {expected!r}, views {actual!r}")

    everything = views.deadlines_within(100_000, date(2000, 1, 1))["deadlines"]
    deadlines = {row["application_id"]: row for row in everything}
    open_orders = views.open_payout_orders()["orders"]
    daily: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for en in enterprises:
        wallet = ledger.wallet_summary(en)
        events = ledger.wallet_events(en)
        state = ledger.get_wallet(en).state
        balances = views.balances(en)
        same(f"{en} held", wallet["held"], balances["held"])
        same(f"{en} due", wallet["due"], balances["due"])
        by_id = {row["application_id"]: row for row in balances["applications"]}
        for summary in wallet["applications"]:
            application_id = summary["application_id"]
            application = ledger.application_summary(en, application_id)
            row = by_id.get(application_id)
            if row is None:
                problems.append(f"{en} {application_id}: no balance row")
                continue
            for field in ("held", "paid_out", "due", "refunded"):
                same(f"{application_id} {field}", application[field], row[field])
            recovery = application["recovery"]
            same(f"{application_id} recovered", recovery["repaid"] if recovery else "0.00", row["recovered"]["repaid"])
            upcoming = application["next_deadline"]
            listed = deadlines.get(application_id)
            same(
                f"{application_id} next deadline",
                upcoming and (application["state"], upcoming["rule"], upcoming["date"]),
                listed and (listed["state"], listed["rule"], listed["deadline"]),
            )
            inbox = views.provider_inbox(application["provider"])["applications"]
            same(
                f"{application_id} in the provider's inbox",
                application["state"] in ("submitted", "confirmed", "funded", "paying", "paid_out"),
                application_id in {row["application_id"] for row in inbox},
            )
        ceilings = {(c["year"], c["key"]): c for c in views.ceilings(en)["ceilings"]}
        for ceiling in state.ceilings.values():
            row = ceilings.get((ceiling.year, ceiling.key), {})
            expected = {
                "ceiling": format_euro(ceiling.ceiling),
                "reserved": format_euro(ceiling.reserved),
                "used": format_euro(ceiling.used),
                "freed": format_euro(ceiling.freed),
                "lost": format_euro(ceiling.lost),
                "remaining": format_euro(ceiling.remaining),
            }
            same(f"{en} ceiling {ceiling.year}/{ceiling.key}", expected, {k: row.get(k) for k in expected})
        waiting = [
            (
                en,
                a.application_id,
                o.order_id,
                format_euro(o.amount),
                o.ordered_on.isoformat(),
                (o.ordered_on + timedelta(days=a.payout_service_days)).isoformat(),
            )
            for a in state.applications.values()
            for o in a.pending_orders
        ]
        same(
            f"{en} open payout orders",
            sorted(waiting, key=lambda row: (row[4], row[2])),
            [
                (o["enterprise_number"], o["application_id"], o["order_id"], o["amount"], o["ordered_on"], o["due_by"])
                for o in open_orders
                if o["enterprise_number"] == en
            ],
        )
        kept = {a.application_id: retain_until(a.retention_years, a.submitted_on) for a in state.applications.values()}
        longest = max(kept.values(), default=None)
        expected_rows = []
        for event in events:
            application_id = getattr(event, "application_id", None)
            if application_id is not None:
                until = kept[application_id]
            else:
                until = retain_until(RECORD_RETENTION_YEARS, event.business_date)
                until = max(until, longest) if longest else until
            expected_rows.append(
                (
                    event.originator_version,
                    type(event).__name__,
                    event.business_date.isoformat(),
                    application_id,
                    [leg.model_dump(mode="json") for leg in getattr(event, "legs", ())],
                    event.hash,
                    until.isoformat(),
                )
            )
            day = getattr(event, "value_date", None) or event.business_date  # a receipt: the bank's date
            for leg in getattr(event, "legs", ()):
                slot = daily[(day.isoformat(), account_kind(leg.account))]
                slot[0 if leg.amount >= 0 else 1] += abs(leg.amount)
        actual_rows = [
            (r["sequence"], r["type"], r["business_date"], r["application_id"], r["legs"], r["hash"], r["retain_until"])
            for r in views.audit_trail(en)["rows"]
        ]
        same(f"{en} audit trail", expected_rows, actual_rows)
    totals = views.daily_totals("2000-01-01", "2100-12-31")["totals"]
    same(
        "daily totals",
        sorted((day, kind, format_euro(a), format_euro(b)) for (day, kind), (a, b) in daily.items()),
        sorted((t["day"], t["account_kind"], t["money_in"], t["money_out"]) for t in totals),
    )
    return problems
