"""Readiness, outside ``/v1`` and without a key (a load balancer asks it):
whether the store answers and the read models are not stuck, and if they are,
at which notification and why."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.problems import ReadModelsUnavailable
from ledger.domain.text import printable

log = logging.getLogger("kmo_ledger.api")
router = APIRouter(tags=["operations"])


class StoreCheck(BaseModel):
    ok: bool
    notifications: int | None = None
    """The last notification recorded."""


class ReadModelsCheck(BaseModel):
    ok: bool
    position: int | None = None
    """The last notification the read models hold."""
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
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the check that fails says why"}},
)
def readiness(request: Request) -> Any:
    ledger, read_models = request.app.state.ledger, request.app.state.read_models
    try:
        store = StoreCheck(ok=True, notifications=ledger.recorder.max_notification_id() or 0)
    except Exception:
        log.exception("readiness: the store does not answer")
        store = StoreCheck(ok=False)
    models = ReadModelsCheck(ok=False)
    if store.ok:
        try:
            read_models.read(lambda _queries: None)  # catches up, as every read across wallets does
            models = ReadModelsCheck(ok=True, position=read_models.projector.position)
        except ReadModelsUnavailable:
            stuck = read_models.stuck
            if stuck is not None:
                models = ReadModelsCheck(
                    ok=False,
                    position=stuck.notification_id - 1,
                    stuck_at=stuck.notification_id,
                    event_type=stuck.event_type,
                    reason=printable(stuck.reason)[:300],
                )
    answer = Readiness(ready=store.ok and models.ok, store=store, read_models=models)
    return JSONResponse(answer.model_dump(), status_code=200 if answer.ready else 503)
