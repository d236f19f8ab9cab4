"""Operations across wallets: the deadline run, upcoming deadlines, a
provider's inbox, open payout orders and the reconciliation totals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import reads
from api.answers import BackOfficeFirstCommand
from api.auth import Auditing, InboxOf, Reader, ReadModelsDep
from api.params import never_null
from api.routers.declare import operation
from api.schemas import DeadlineRunOut, InboxOut, IsoDate, OpenPayoutOrdersOut, TotalsOut, UpcomingDeadlinesOut
from ledger.domain.state import ApplicationStateName

router = APIRouter(tags=["operations"])


@operation(router.post, "/deadlines/run", "Apply every deadline passed", DeadlineRunOut, 403)
def run_deadlines(command: BackOfficeFirstCommand):
    """Every application whose deadline passed at the server's clock lapses (or,
    past its completion date with money held, is closed); each lapse carries as
    business date the first day after its deadline."""

    def run() -> DeadlineRunOut:
        lapsed = command.ledger.run_deadlines(command.caller.actor)
        return DeadlineRunOut.model_validate({"lapsed": [vars(report) for report in lapsed]})

    return command.run_once(None, run)


@operation(router.get, "/deadlines", "Open applications with a deadline soon", UpcomingDeadlinesOut, 403, 503)
def list_deadlines(
    _caller: Auditing,
    models: ReadModelsDep,
    within_days: Annotated[int, Query(ge=0, le=3660, description="Days from today (Brussels)")] = 14,
):
    """Open applications whose next deadline falls within `within_days` days,
    passed ones (awaiting the deadline run) included."""
    return reads.upcoming_deadlines(models, within_days)


@operation(router.get, "/providers/{provider}/inbox", "Applications waiting on a provider", InboxOut, 403, 404, 503)
def provider_inbox(
    provider: InboxOf,
    models: ReadModelsDep,
    state: Annotated[
        list[ApplicationStateName] | None,
        Query(
            description="Only applications in these states (repeat it for several). Default: every "
            "application waiting on the provider: `submitted` (its answer, while it may still give it), "
            "`confirmed`, `funded`, `paying`, `paid_out` (the service's completion)",
            json_schema_extra=never_null,
        ),
    ] = None,
):
    """Applications naming the provider, in order of their answer dates. A provider
    key reads only its own inbox."""
    return reads.provider_inbox(models, provider, state)


@operation(router.get, "/payout-orders", "Payout orders not executed", OpenPayoutOrdersOut, 403, 503)
def list_payout_orders(
    _caller: Reader,
    models: ReadModelsDep,
    overdue: Annotated[bool, Query(description="Only orders older than the 14-day service level")] = False,
):
    """Payout orders neither executed nor cancelled, each with its age; one is
    overdue once older than the 14 days the financial manager has to pay."""
    return reads.open_payout_orders(models, overdue)


@operation(router.get, "/reconciliation/totals", "Money in and out per account kind and day", TotalsOut, 403, 503)
def reconciliation_totals(
    _caller: Reader,
    models: ReadModelsDep,
    start: Annotated[
        IsoDate | None, Query(alias="from", description="First day, YYYY-MM-DD", json_schema_extra=never_null)
    ] = None,
    end: Annotated[
        IsoDate | None, Query(alias="to", description="Last day, YYYY-MM-DD", json_schema_extra=never_null)
    ] = None,
):
    """Per day and account kind (enterprise, government, provider, held, due,
    recovered): money in, out and net. A receipt counts on its bank value date."""
    return TotalsOut.model_validate(reads.money_totals(models, start, end)).model_dump(mode="json", by_alias=True)
