"""Reads across wallets, answered from the read models in ``projections/``.

The app keeps the views up to date with a :class:`~projections.Projector` of its
own (:class:`ReadModels`). Before each of these reads it folds in every event
recorded so far, so a client always reads its own writes; each read then costs
a query of the views, not a fold of every wallet.

One function per read turns the views' rows into the response shape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import nullcontext
from datetime import date, datetime
from typing import Any, TypeVar

from api.problems import ReadModelsUnavailable
from ledger.application import KmoLedger
from ledger.domain.clock import brussels_date
from ledger.domain.errors import StoreBusy, StoreUnavailable, ValidationFailed
from projections import Projector, Queries, ReadModelsStuck
from projections.schema import SchemaOutdated
from projections.store import Target

log = logging.getLogger("kmo_ledger.api")
T = TypeVar("T")


def today(ledger: KmoLedger) -> date:
    return brussels_date(ledger.clock.now())


class ReadModels:
    """The read models of one ledger, kept by an in-process projector.

    The projector opens on the first read (views built by another schema version
    are rebuilt then); a read that finds it failing tries again on the next one.
    Catching up is serialised by the projector; the reads run side by side, each
    worker thread on a connection of its own (views in memory: one at a time).
    """

    def __init__(self, ledger: KmoLedger, views_url: str | None = None):
        self.ledger = ledger
        self.views_url = views_url
        self._projector: Projector | None = None
        self._views: Queries | None = None
        self._opening = threading.Lock()
        self._one_reader: Any = nullcontext()
        self.stuck: ReadModelsStuck | None = None
        """Why the last catch-up stopped, until one gets through (for readiness)."""

    @property
    def projector(self) -> Projector:
        """The projector keeping the views (opened if need be)."""
        return self._open()[0]

    def read(self, query: Callable[[Queries], T]) -> T:
        """``query`` answered from views that hold every event recorded before this call."""
        projector, views = self._open()
        with self._one_reader:
            high = self.ledger.recorder.max_notification_id() or 0
            if projector.position < high:  # another runner may be ahead: catch_up then only reads its position
                try:
                    projector.catch_up()
                except (StoreBusy, StoreUnavailable):
                    raise  # answered as what they are: the store's 503, not the read models'
                except ReadModelsStuck as stuck:
                    self.stuck = stuck
                    log.error("%s", stuck)
                    raise ReadModelsUnavailable(
                        f"the read models are stuck after notification {stuck.notification_id - 1} of {high}: "
                        f"they cannot apply notification {stuck.notification_id} ({stuck.event_type}); "
                        "reads of one wallet still answer"
                    ) from stuck
                except Exception as error:
                    log.exception("the read models cannot catch up from notification %d", projector.position)
                    raise ReadModelsUnavailable(
                        f"the read models cannot catch up from notification {projector.position} of {high}; "
                        "reads of one wallet still answer"
                    ) from error
                self.stuck = None
            return query(views)

    def _open(self) -> tuple[Projector, Queries]:
        with self._opening:
            if self._projector is None or self._views is None:
                try:
                    projector = _projector(self.ledger, self.views_url)
                except Exception as error:
                    log.exception("opening the read models failed")
                    raise ReadModelsUnavailable("the read models cannot be opened") from error
                if ":memory:" in projector.views_url:
                    self._views, self._one_reader = _SharedQueries(projector.target), threading.Lock()
                else:
                    self._views = Queries(projector.views_url)
                self._projector = projector
            return self._projector, self._views

    def close(self) -> None:
        with self._opening:
            if self._views is not None:
                self._views.close()
            if self._projector is not None:
                self._projector.close()
            self._projector = self._views = None


def _projector(ledger: KmoLedger, views_url: str | None) -> Projector:
    try:
        return Projector(ledger, views_url)
    except SchemaOutdated as outdated:
        log.warning("%s; rebuilding them now", outdated)
    with Projector(ledger, views_url, check_schema=False) as rebuilding:
        rebuilding.rebuild()
    return Projector(ledger, views_url)


class _SharedQueries(Queries):
    """Queries on the projector's own in-memory database, read on its connection."""

    def __init__(self, target: Target):
        super().__init__("sqlite:///:memory:")
        self._shared = target

    @property
    def target(self) -> Target:
        return self._shared

    def close(self) -> None:
        """The projector closes its connection."""


# ---------------------------------------------------------------------- the reads


def upcoming_deadlines(models: ReadModels, within_days: int) -> dict[str, Any]:
    """Open applications whose next deadline falls within ``within_days`` (or has
    passed and awaits the deadline run), soonest first."""
    now = today(models.ledger)
    found = models.read(lambda views: views.deadlines_within(within_days, now))
    return {"today": now, "within_days": within_days, "applications": found["deadlines"]}


def provider_inbox(models: ReadModels, provider: str, states: list[str] | None = None) -> dict[str, Any]:
    """Applications naming ``provider`` in ``states`` (default: every one waiting on
    it, for an answer it may still give or for a completion)."""
    now = today(models.ledger)
    return models.read(lambda views: views.provider_inbox(provider, now, states))


def open_payout_orders(models: ReadModels, overdue_only: bool) -> dict[str, Any]:
    """Payout orders not executed (nor cancelled); overdue once older than the
    promised service level (14 days after the order)."""
    now = today(models.ledger)
    found = models.read(lambda views: views.open_payout_orders(due_before=now if overdue_only else None))
    orders = []
    for order in found["orders"]:
        ordered_on, due_by = date.fromisoformat(order["ordered_on"]), date.fromisoformat(order["due_by"])
        orders.append(order | {"age_days": (now - ordered_on).days, "overdue": now > due_by})
    return {"today": now, "overdue_only": overdue_only, "orders": orders}


def audit_trail(models: ReadModels, enterprise_number: str) -> dict[str, Any]:
    """Every event of the wallet (but those purged after export) with its money
    legs and how long it is kept (RULES.md §7)."""
    found = models.read(lambda views: views.audit_trail(enterprise_number))
    if not found["rows"]:
        models.ledger.get_wallet(enterprise_number)  # no wallet: NotFound (a wallet purged whole: no rows)
    rows = [row | {"recorded_at": datetime.fromisoformat(row["recorded_at"]).isoformat()} for row in found["rows"]]
    return {"rows": rows}


def money_totals(models: ReadModels, start: date | None, end: date | None) -> dict[str, Any]:
    """Money in and out per account kind and day: a receipt counts on the bank's
    value date, any other money event on its business date."""
    if start and end and start > end:
        raise ValidationFailed(f"from {start} lies after to {end}")
    found = models.read(lambda views: views.daily_totals(start or date.min, end or date.max))
    return {
        "from": start,
        "to": end,
        "rows": [
            {
                "date": row["day"],
                "account_kind": row["account_kind"],
                "in": row["money_in"],
                "out": row["money_out"],
                "net": row["net"],
            }
            for row in found["totals"]
        ],
    }
