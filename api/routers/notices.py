"""Notices (#20): what the notifier derived and how its delivery went
(back-office), and a redelivery on request. The notifier itself
(:class:`projections.notifier.Notifier`) runs in a thread of this process
when enabled (``KMO_LEDGER_NOTIFY``, by default when ``KMO_LEDGER_SMTP_URL``
is set), or standalone (``kmo-ledger notify``)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from api.answers import BackOfficeFirstCommand
from api.auth import Caller, allow
from api.params import never_null
from api.problems import ReadModelsUnavailable
from api.routers.declare import operation
from api.schemas import ResponseBody
from ledger.application import KmoLedger
from ledger.domain.errors import NotFound
from ledger.notices.settings import NoticeSettings
from projections.notifier import STATUSES, Notifier

router = APIRouter(prefix="/notices", tags=["notices"])
log = logging.getLogger("kmo_ledger.notices")
BackOffice = Annotated[Caller, Depends(allow("back-office"))]
NOTICE_PAGE, MAX_NOTICE_PAGE = 50, 500
Status = Literal[STATUSES]  # type: ignore[valid-type]
NoticeIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]


class NoticeService:
    """The notices of one ledger: the notifier (opened on first use) and, when
    enabled, its thread, from the app's start-up to its shut-down."""

    def __init__(self, ledger: KmoLedger, settings: NoticeSettings):
        self.ledger, self.settings = ledger, settings
        self._notifier: Notifier | None = None
        self._opening = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def notifier(self) -> Notifier:
        with self._opening:
            if self._notifier is None:
                try:
                    self._notifier = Notifier(self.ledger, self.settings)
                except Exception as error:
                    log.exception("opening the notices' store failed")
                    raise ReadModelsUnavailable("the notices' store cannot be opened") from error
            return self._notifier

    def start(self) -> None:
        notifier = self.notifier
        self._thread = threading.Thread(
            target=notifier.run_forever, args=(self._stop,), name="kmo-ledger-notifier", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()  # the notifier begins no further batch
        if self._thread is not None:
            self._thread.join(timeout=60)
            if self._thread.is_alive():  # a batch stuck past every send timeout: leave its store to the process
                log.warning("the notifier did not stop within 60 s; its store is left open")
                return
        with self._opening:
            if self._notifier is not None:
                self._notifier.close()
                self._notifier = None


async def notice_service(request: Request) -> NoticeService:
    return request.app.state.notices


Notices = Annotated[NoticeService, Depends(notice_service)]


class NoticeOut(ResponseBody):
    id: str = Field(
        description="Stable: derived from the event (or reminder) and the recipient; the e-mail's "
        "Message-ID and the webhook-id carry it, so a receiver drops duplicates by it"
    )
    type: str = Field(examples=["payment_instructions"])
    status: Status
    party: Literal["enterprise", "provider"]
    recipient: str = Field(description="The enterprise number or the provider's registration number")
    channel: Literal["email", "webhook"]
    address: str | None = Field(description="Where it went or goes (null: nobody known)")
    enterprise_number: str
    application_id: str | None
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None
    data: dict[str, Any]


class NoticesOut(ResponseBody):
    notices: list[NoticeOut]
    next_cursor: str | None = Field(description="Send it back as `cursor` for the next page (null: the last)")


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key != "source"}


@operation(router.get, "", "Notices and their delivery", NoticesOut, 403, 503)
def list_notices(
    _caller: BackOffice,
    service: Notices,
    status: Annotated[
        Status | None,
        Query(
            description="Only notices in this state: pending, delivered, failed (parked after its retries) "
            "or undeliverable (nobody known to send it to)",
            json_schema_extra=never_null,
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=36,
            pattern=r"^[0-9a-f-]*$",
            description="The `next_cursor` of the page before",
            json_schema_extra=never_null,
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_NOTICE_PAGE, description=f"1 to {MAX_NOTICE_PAGE}")] = NOTICE_PAGE,
):
    """Every notice derived from the events (payment instructions, reminders,
    receipts, payouts, lapses, stops, recoveries; to enterprises and providers),
    with its delivery state: attempts, next attempt, last error. In order of id."""
    notices, after = service.notifier.store.page(status, cursor or None, limit)
    return {"notices": [_out(row) for row in notices], "next_cursor": after}


@operation(router.post, "/{id}/redelivery", "Send a notice again", NoticeOut, 403, 404, 503)
def redeliver_notice(id: NoticeIdPath, command: BackOfficeFirstCommand, service: Notices):
    """Make the notice pending now, at its recipient's address of today (a
    contact or directory entry added since is used); with still nobody known it
    stays `undeliverable`. It goes out under the same id. With an
    `Idempotency-Key`, a retry answers what the first request did."""
    notifier = service.notifier

    def redeliver() -> dict[str, Any]:
        row = notifier.store.get(id)
        if row is None:
            raise NotFound(f"no notice {id}")
        return _out(notifier.store.redeliver(id, notifier.address_now(row), notifier.ledger.clock.now()))

    return command.run_once(None, redeliver)
