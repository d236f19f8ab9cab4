"""The composition root: settings -> keys, ledger, gate, handlers, routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api import console, observability
from api.gate import Gate
from api.keys import KeyRing
from api.problems import ANSWERED_EVERYWHERE, MEDIA_TYPE, documented_problem, install_handlers
from api.reads import ReadModels
from api.routers import applications, checkpoints, docs, health, notices, operations, providers, sandbox, wallets
from api.settings import Settings
from ledger.application import KmoLedger
from ledger.audit.checkpoints import Checkpointer, checkpoint_every, key_file
from ledger.build import build_ledger
from ledger.notices.settings import NoticeSettings

DESCRIPTION = """\
The KMO-portefeuille (SME wallet) ledger: every euro in or out of a wallet is
an event. Every request under `/v1` carries `Authorization: Bearer <key>`;
roles: `back-office` (every command and read), `provider` (its own
applications: read, confirm, refuse, complete), `auditor` (every read,
replay, verification), `reconciler` (balances, totals, reconciliation).

Money is a string of euro with two decimals (a number is accepted on input).
Every POST accepts an `Idempotency-Key`; commands accept `If-Match` with the
`ETag` of a wallet read. Errors are RFC 9457 problem details
(`application/problem+json`) with a stable `code`.
"""


BEARER = {"type": "http", "scheme": "bearer", "description": "An API key: Authorization: Bearer <key>"}
TAGS = [
    {"name": "wallets", "description": "Open a wallet, file SME figures, read it; the auditor's reads of one wallet"},
    {"name": "applications", "description": "Submit an application and take it through its life, step by step"},
    {
        "name": "operations",
        "description": "Across wallets: deadlines, inboxes, payout orders, reconciliation totals, readiness",
    },
    {"name": "checkpoints", "description": "Signed checkpoints of the ledger-wide Merkle tree, and proofs from it"},
    {"name": "notices", "description": "The scheme's e-mails and webhooks derived from the events, and their delivery"},
    {"name": "providers", "description": "The provider directory: where a provider's notices go"},
    {"name": "sandbox", "description": "Only with KMO_LEDGER_SANDBOX=true: move the server's clock forward"},
]
SERVERS = [{"url": "/", "description": "The server that serves this document"}]
CONTACT = {"name": "kmo-ledger maintainers"}


def create_app(settings: Settings | None = None, ledger: KmoLedger | None = None) -> FastAPI:
    """Build the API from ``settings`` (default: the environment, read now).

    A ``ledger`` given here is used as is and left open; otherwise the app opens
    one on ``settings.database_url`` at start-up and closes it on shut-down.
    Either way the app keeps the read models beside its events up to date
    itself (:class:`api.reads.ReadModels`), from start-up to shut-down.
    """
    settings = settings or Settings()
    keys = KeyRing.load(settings)  # read again when the file changes
    notice_settings = NoticeSettings()  # KMO_LEDGER_SMTP_URL, KMO_LEDGER_NOTIFY, ...

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if ledger is None:
            app.state.ledger = build_ledger(settings)
        app.state.read_models = ReadModels(app.state.ledger)
        app.state.notices = notices.NoticeService(app.state.ledger, notice_settings)
        if notice_settings.enabled:  # one process delivers at a time: the notifier's lease
            app.state.notices.start()
        app.state.checkpointer = Checkpointer(app.state.ledger, app.state.checkpoint_key, checkpoint_every()).start()
        observability.observe_commits(app.state.ledger, app.state.metrics)
        try:
            yield
        finally:
            app.state.checkpointer.close()
            app.state.notices.close()
            app.state.read_models.close()
            if ledger is None:
                app.state.ledger.close()

    app = FastAPI(
        title="kmo-ledger",
        version="1",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        servers=SERVERS,
        contact=CONTACT,
        lifespan=lifespan,
        separate_input_output_schemas=True,
        docs_url=None,  # served by api.routers.docs, from this server instead of a CDN
        redoc_url=None,
    )
    if ledger is not None:
        app.state.ledger = ledger
    app.state.settings = settings
    app.state.checkpoint_key = key_file(keys_file=settings.keys_file())
    install_handlers(app)
    app.add_middleware(Gate, keys=keys, max_body_bytes=settings.max_body_bytes)
    observability.install(app)  # added last, so outermost: the gate's 401 and 413 are observed too
    # each router straight under /v1: every level of inclusion is another
    # scan of its routes on every request
    for router in (
        applications.router,
        wallets.router,
        operations.router,
        checkpoints.router,
        notices.router,
        providers.router,
    ):
        app.include_router(router, prefix="/v1")
    if settings.sandbox:  # without sandbox mode the sandbox's paths do not exist
        app.include_router(sandbox.router, prefix="/v1")
    app.include_router(health.router)
    docs.install(app)
    console.install(app, keys)  # /console: its own session cookie; the gate's body cap applies
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, with every error answered as problem+json, and on
    every operation the problems any route may answer (:data:`ANSWERED_EVERYWHERE`)."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
            contact=app.contact,
        )
        document.setdefault("components", {}).setdefault("securitySchemes", {})["HTTPBearer"] = BEARER
        for path, path_item in document.get("paths", {}).items():
            for operation in path_item.values():
                if path.startswith("/v1/"):  # the gate authenticates every one of them
                    operation["security"] = [{"HTTPBearer": []}]
                for status in ANSWERED_EVERYWHERE:
                    operation["responses"].setdefault(str(status), documented_problem(status))
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status.isdigit() and int(status) >= 400 and "application/json" in content:
                        content[MEDIA_TYPE] = content.pop("application/json")
        app.openapi_schema = document
    return app.openapi_schema
