"""What the console's wallet page shows.

The summary, ceilings and applications are the ledger's own reads: the wallet
as ``GET /v1/wallets/{en}`` shows it, or, as of a day, as
``GET /v1/wallets/{en}/state?as_of=`` replays it: that very call when no event
lies after the day, otherwise the same fold of the events up to the day, done
once here so the applications' state comes from it too.

The timeline is read page-wise: the balances after each event and the chart
come from the legs of the wallet's events in the read models' audit trail (one
query of narrow rows; the stored events when the trail was purged), summed in
order as ``kmo-ledger replay`` sums them, and only the page's events are
decoded, through the API's event paging, for the words ``kmo-ledger replay``
prints (:func:`ledger.audit.replay.describe`), their legs, actor and hash.
The first page of a 10,000-event wallet decodes 50 events and folds none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from api.console.charts import LineChart, ceiling_bars, end_of_day_values, line_chart
from api.console.formatting import cents_of
from api.problems import ReadModelsUnavailable
from api.reads import ReadModels, today
from api.routers.wallets import wallet_events_page
from ledger.application import KmoLedger
from ledger.audit.replay import describe, replay_events
from ledger.domain.errors import NotFound
from ledger.domain.identifiers import canonical_enterprise_number, wallet_id
from ledger.domain.state import AT_FINANCIAL_MANAGER
from ledger.summaries import application_summary, wallet_summary

Event = tuple[int, str, Any]
PAGE = 50
"""Events per timeline page."""
SHOWN_BALANCES = ("held_own_share", "held_subsidy", "due_enterprise", "due_government")
CHARTED = (("held own share", "line-own-share"), ("held subsidy", "line-subsidy"))


@dataclass
class TimelineRow:
    sequence: int
    business_date: str
    recorded_at: str
    type: str
    project_number: str | None
    amount: int | None
    detail: str
    balances: dict[str, int]
    legs: list[tuple[str, int]]
    actor: dict[str, Any]
    hash: str | None
    previous_hash: str | None


VERIFIED_AT_ONCE = 1_000  # events: verifying them takes well under the 300 ms a page may


@dataclass
class Timeline:
    rows: list[TimelineRow]
    page: int
    pages: int
    events: int
    chart: LineChart | None


@dataclass
class WalletPage:
    enterprise_number: str
    as_of: date | None
    summary: dict[str, Any]
    applications: list[dict[str, Any]]
    ceilings: list[Any] = field(default_factory=list)
    timeline: Timeline | None = None
    problems: list[str] | None = None


def wallet_page(
    ledger: KmoLedger,
    models: ReadModels,
    enterprise_number: str,
    as_of: date | None,
    page: int,
    with_timeline: bool,
    verify: bool,
) -> WalletPage:
    """The page of one wallet, as it stands or replayed to the end of ``as_of``;
    the timeline (page ``page``) when asked for; verification when asked for, and
    on every page of an auditor (``with_timeline``) for a wallet of at most
    :data:`VERIFIED_AT_ONCE` events (a longer one's costs more than the page's
    budget: a button asks for it)."""
    number = canonical_enterprise_number(enterprise_number)
    wallet = ledger.get_wallet(number)  # NotFound: no such wallet
    latest = wallet.state.latest_business_date
    if as_of is None or latest is None or latest <= as_of:  # nothing after as_of: the wallet as it stands
        summary = ledger.wallet_summary(number) if as_of is None else ledger.replay(number, as_of)
        applications = [ledger.application_summary(number, a["application_id"]) for a in summary["applications"]]
    else:  # the replay of /state?as_of=, folded here once for the applications' state too
        events = ledger.wallet_events(number, as_of)
        state = replay_events(events)
        if state is None:
            raise NotFound(f"the wallet of enterprise {number} did not exist on {as_of}")
        summary = wallet_summary(state, events[-1].originator_version, as_of) | {"as_of": as_of.isoformat()}
        applications = [application_summary(a) for a in state.applications.values()]
    result = WalletPage(number, as_of, summary, applications, ceiling_bars(summary["ceilings"]))
    if with_timeline:
        projects = {a["application_id"]: a["project_number"] for a in applications}
        result.timeline = timeline(ledger, models, number, wallet.version, as_of, page, projects)
    if verify or (with_timeline and wallet.version <= VERIFIED_AT_ONCE):
        result.problems = ledger.verify_wallet(number)
    return result


def timeline(
    ledger: KmoLedger,
    models: ReadModels,
    number: str,
    version: int,
    as_of: date | None,
    page: int,
    projects: dict[str, str],
) -> Timeline:
    """Page ``page`` of the wallet's events (those on or before ``as_of``), each
    with the balances after it, and the chart of held money over business dates."""
    sequences: list[int] = []
    after: list[tuple[int, ...]] = []
    changes: list[tuple[str, tuple[int, int]]] = []
    totals = dict.fromkeys(AT_FINANCIAL_MANAGER, 0)
    cut = as_of.isoformat() if as_of else None
    for sequence, on, legs in _legs_of_events(ledger, models, number, version):
        if cut is not None and on > cut:
            continue
        own = subsidy = 0
        for leg in legs:
            account = leg["account"]
            if account in totals:
                amount = cents_of(leg["amount"])
                totals[account] += amount
                if account == "held_own_share":
                    own += amount
                elif account == "held_subsidy":
                    subsidy += amount
        sequences.append(sequence)
        after.append(tuple(totals[name] for name in SHOWN_BALANCES))
        changes.append((on, (own, subsidy)))
    if not sequences:
        raise NotFound(f"the wallet of enterprise {number} did not exist on {as_of}")
    pages = -(-len(sequences) // PAGE)
    page = min(max(page, 1), pages)
    first = (page - 1) * PAGE
    previous = sequences[first - 1] if first else None
    events = wallet_events_page(ledger, number, as_of, previous, PAGE)
    index = {sequence: position for position, sequence in enumerate(sequences)}
    rows = []
    for event in events:
        amount, detail = describe(event, None)
        application_id = getattr(event, "application_id", None)
        rows.append(
            TimelineRow(
                sequence=event.originator_version,
                business_date=event.business_date.isoformat(),
                recorded_at=event.timestamp.isoformat(),
                type=type(event).__name__,
                project_number=projects.get(application_id) if application_id else None,
                amount=amount,
                detail=detail,
                balances=dict(zip(SHOWN_BALANCES, after[index[event.originator_version]], strict=True))
                if event.originator_version in index
                else {},
                legs=[(leg.account, leg.amount) for leg in getattr(event, "legs", ())],
                actor=event.actor.model_dump(),
                hash=event.hash,
                previous_hash=event.previous_hash,
            )
        )
    values = [(date.fromisoformat(on), held) for on, held in end_of_day_values(changes, 2)]
    until = as_of or today(ledger)
    if values and values[-1][0] < until:  # the last balances hold until the day shown
        values.append((until, values[-1][1]))
    chart = line_chart(values, CHARTED)
    return Timeline(rows, page, pages, len(sequences), chart)


def _legs_of_events(ledger: KmoLedger, models: ReadModels, number: str, version: int) -> Iterable[Event]:
    """(sequence, business date, legs as stored) of each of the wallet's first
    ``version`` events: from the read models' audit trail (one query of narrow
    rows, caught up first), or, when that trail is not whole (rows purged after
    export) or cannot answer, from the stored events themselves."""
    try:
        rows = models.read(lambda views: views.audit_trail(number))["rows"]
    except ReadModelsUnavailable:
        rows = []
    rows = [row for row in rows if row["sequence"] <= version]
    if len(rows) == version:
        return ((row["sequence"], row["business_date"], row["legs"]) for row in rows)
    stored = ledger.stored_rows(wallet_id(number))
    return ((sequence, row["business_date"], row.get("legs") or ()) for sequence, _type, row in stored)
