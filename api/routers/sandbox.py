"""The sandbox clock, in the manner of Stripe's test clocks: served only with
``KMO_LEDGER_SANDBOX=true`` (:func:`api.create_app` leaves this router out
otherwise, so the path answers 404 and is not in the OpenAPI document).

Back-office moves the server's clock forward, then runs the deadlines
(``POST /v1/deadlines/run``) and watches applications lapse. The clock is kept
in the store (:mod:`ledger.storage.sandbox`): every server process shows the
same moment, after a restart too, and it still runs from where it was moved to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, Field

from api.answers import BackOfficeFirstCommand
from api.auth import ALL_ROLES, Caller, LedgerDep, allow
from api.routers.declare import operation
from api.schemas import IsoDate, RequestBody, ResponseBody, example
from ledger.application import KmoLedger
from ledger.domain.clock import brussels_date
from ledger.domain.errors import NotFound
from ledger.storage.sandbox import SandboxClock

router = APIRouter(tags=["sandbox"])


class SandboxClockIn(RequestBody):
    model_config = example(now="2026-03-20T09:00:00+01:00")
    now: AwareDatetime = Field(description="The moment the clock shows from now on: ISO 8601 with its UTC offset")


class SandboxClockOut(ResponseBody):
    now: datetime = Field(description="The moment the sandbox clock shows, in UTC")
    today: IsoDate = Field(description="Its Brussels business date")


def sandbox_clock(ledger: KmoLedger) -> SandboxClock:
    if not isinstance(ledger.clock, SandboxClock):  # a ledger given to create_app as it is
        raise NotFound("this server's ledger was not opened in sandbox mode")
    return ledger.clock


def shown(moment: datetime) -> SandboxClockOut:
    return SandboxClockOut(now=moment.astimezone(UTC), today=brussels_date(moment))


@operation(router.post, "/sandbox/clock", "Move the sandbox clock forward", SandboxClockOut, 403, 404)
def move_sandbox_clock(body: SandboxClockIn, command: BackOfficeFirstCommand):
    """Sandbox mode only (`KMO_LEDGER_SANDBOX=true`). From now on the server's
    clock shows `now`, and runs on from there, for every command, read and
    deadline run of every server process. Forward only: a moment before what
    the clock shows already is a 422 `validation_error`, and nothing changes."""
    clock = sandbox_clock(command.ledger)
    return command.run_once(body, lambda: shown(clock.move_to(body.now)))


@operation(router.get, "/sandbox/clock", "The sandbox clock", SandboxClockOut, 404)
def read_sandbox_clock(_caller: Annotated[Caller, Depends(allow(*ALL_ROLES))], ledger: LedgerDep):
    """Sandbox mode only: the moment the server's clock shows."""
    return shown(sandbox_clock(ledger).now())
