"""The operator's checks, outside ``/v1`` and without a key (a load balancer
or Prometheus asks them):

- ``GET /healthz``: the process is alive and its event loop answers;
- ``GET /readyz``: the store answers and the read models are within
  ``KMO_LEDGER_READY_MAX_LAG`` notifications (default 1000) of it: each
  check starts a catch-up of the read models (in the background, one at a
  time) and waits for it up to ``READY_WAIT`` seconds, then compares the
  position they committed with the last notification recorded when the check
  began. Read models stuck at a notification they cannot apply are not ready
  whatever the lag, and the answer names that notification and why;
- ``GET /metrics``: the figures of :mod:`api.observability` in Prometheus'
  text format, the read models' lag measured at the scrape.
"""

from __future__ import annotations

import logging
import threading
from contextlib import closing
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from api.reads import ReadModels
from ledger.domain.errors import LedgerError
from ledger.domain.text import printable
from projections import schema
from projections.store import connect, ledger_url

log = logging.getLogger("kmo_ledger.api")
router = APIRouter(tags=["operations"])

READY_WAIT = 1.0
"""Seconds a readiness check waits for the catch-up it started."""


class CatchUp:
    """The readiness checks' catch-up of the read models: one at a time, in a
    thread of its own, so a check answers within ``READY_WAIT`` however far
    behind the read models are (a check that finds one running waits for it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._finished: threading.Event | None = None
        self.failure: str | None = None
        """Why the last catch-up failed, when it failed for another reason than a
        stuck notification (which :attr:`ReadModels.stuck` names)."""

    def run(self, read_models: ReadModels, wait: float = READY_WAIT) -> None:
        with self._lock:
            if self._finished is None or self._finished.is_set():
                self._finished = threading.Event()
                thread = threading.Thread(
                    target=self._catch_up, args=(read_models, self._finished), name="readiness catch-up", daemon=True
                )
                thread.start()
            finished = self._finished
        finished.wait(wait)

    def _catch_up(self, read_models: ReadModels, finished: threading.Event) -> None:
        try:
            read_models.read(lambda _views: None)  # logs why it failed, and notes a stuck notification
            self.failure = None
        except LedgerError as refused:  # the read models, or the store, unavailable: said why already
            self.failure = refused.detail
        except Exception as error:
            log.exception("readiness: the read models cannot catch up")
            self.failure = f"{type(error).__name__}: the read models cannot catch up"
        finally:
            finished.set()


def committed_position(read_models: ReadModels) -> int | None:
    """The last notification the read models committed, as every worker sees it
    (read on a connection of its own); None when it cannot be read."""
    url = read_models.views_url or ledger_url(read_models.ledger)
    try:
        if ":memory:" in url:  # views of one process: its projector knows
            return read_models.projector.position
        with closing(connect(url)) as target:
            if not target.table_exists(schema.TRACKING.name):
                return 0  # never opened: they hold nothing yet
            state = schema.tracking(target)
    except Exception:
        log.warning("the read models' position cannot be read", exc_info=True)
        return None
    return state[0] if state else 0


class Liveness(BaseModel):
    alive: bool = True


@router.get(
    "/healthz",
    operation_id="liveness",
    summary="Whether the server process is alive",
    description="Answers 200 as long as the process serves requests; it asks nothing of the store.",
    response_model=Liveness,
)
async def liveness() -> Liveness:  # no I/O: answered on the event loop itself
    return Liveness()


class StoreCheck(BaseModel):
    ok: bool
    notifications: int | None = None
    """The last notification recorded."""


class ReadModelsCheck(BaseModel):
    ok: bool
    position: int | None = None
    """The last notification the read models hold."""
    lag: int | None = Field(default=None, description="Notifications recorded that the read models do not hold yet")
    max_lag: int | None = Field(
        default=None, description="The lag up to which they are ready (KMO_LEDGER_READY_MAX_LAG)"
    )
    stuck_at: int | None = None
    event_type: str | None = None
    reason: str | None = None


class Readiness(BaseModel):
    ready: bool
    store: StoreCheck
    read_models: ReadModelsCheck


@router.get(
    "/readyz",
    operation_id="readiness",
    summary="Whether the server can answer: the store and the read models",
    description="Ready when the store answers and the read models are within `KMO_LEDGER_READY_MAX_LAG` "
    "notifications of it (default 1000) after a catch-up of at most one second; read models stuck at a "
    "notification they cannot apply are not ready, and the answer names it.",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the check that fails says why"}},
)
def readiness(request: Request) -> Any:
    app = request.app
    ledger, read_models = app.state.ledger, app.state.read_models
    try:
        store = StoreCheck(ok=True, notifications=ledger.recorder.max_notification_id() or 0)
    except Exception:
        log.exception("readiness: the store does not answer")
        store = StoreCheck(ok=False)
    models = ReadModelsCheck(ok=False)
    if store.ok:
        catch_up = app.state.catch_up
        catch_up.run(read_models)
        models = _read_models_check(read_models, catch_up.failure, store.notifications or 0, app.state.ready_max_lag)
        if models.lag is not None:
            app.state.metrics.read_models_lag.set(models.lag)
    answer = Readiness(ready=store.ok and models.ok, store=store, read_models=models)
    return JSONResponse(answer.model_dump(), status_code=200 if answer.ready else 503)


def _read_models_check(read_models: ReadModels, failure: str | None, high: int, max_lag: int) -> ReadModelsCheck:
    """Stuck (at which notification, why), failing (why), or how far behind."""
    stuck = read_models.stuck
    if stuck is not None:
        return ReadModelsCheck(
            ok=False,
            position=stuck.notification_id - 1,
            stuck_at=stuck.notification_id,
            event_type=stuck.event_type,
            reason=printable(stuck.reason)[:300],
        )
    position = committed_position(read_models)
    if position is None:
        return ReadModelsCheck(ok=False, reason="the read models' position cannot be read")
    lag = max(0, high - position)
    return ReadModelsCheck(
        ok=lag <= max_lag and failure is None, position=position, lag=lag, max_lag=max_lag, reason=failure
    )


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="The server's figures in Prometheus' text format",
    description="Requests by route and status with their latency, commands by outcome, refusals by problem "
    "code, the group commit's transactions and the read models' lag; summed over every worker of "
    "`kmo-ledger serve --workers N`.",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus' text exposition format"}},
)
def metrics(request: Request) -> Response:
    app = request.app
    figures = app.state.metrics
    try:
        high = app.state.ledger.recorder.max_notification_id() or 0
    except Exception:
        log.warning("metrics: the store does not answer", exc_info=True)
    else:
        position = committed_position(app.state.read_models)
        if position is not None:
            figures.read_models_lag.set(max(0, high - position))
    return Response(figures.exposition(), media_type=CONTENT_TYPE_LATEST)
