"""What an operator sees of every request: a request id, one JSON log line and
the Prometheus metrics (served at ``/metrics`` by :mod:`api.routers.health`).

- **Request id.** Taken from the request's ``X-Request-ID`` when it is
  printable ASCII without spaces and at most 128 characters, else made
  (uuid4 hex); echoed in the answer's ``X-Request-ID``, problems and 401s
  included, and carried by every log line written while the request is
  answered.
- **Access log.** One line per request on the logger ``kmo_ledger.access``:
  request id, method, route template, status, the caller's key id, the
  problem's ``code`` when the answer is a problem, and the duration in ms.
  Never a secret, a header or a body. ``kmo-ledger serve`` writes every log
  line as JSON (:class:`JsonFormatter`, :func:`log_config`).
- **Metrics** (:class:`Metrics`): requests by method, route template and
  status with their latency; commands by operation id and outcome; refusals
  by problem code; the group commit's transactions (latency and commands per
  transaction); the read models' lag. Under ``serve --workers N`` every
  worker writes its figures to the folder named by ``PROMETHEUS_MULTIPROC_DIR``
  (a fresh one ``serve`` makes) and ``/metrics`` sums them, whichever worker
  answers.

Routes are labelled by their template (``/v1/wallets/{en}``), never the raw
path, so enterprise numbers do not multiply the series; a path that matches
no route is ``unmatched``.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi import HttpMiddleware
from api.routers.health import CatchUp

REQUEST_ID_HEADER = "X-Request-ID"
_GIVEN_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
request_id: ContextVar[str | None] = ContextVar("kmo_ledger_request_id", default=None)
"""The id of the request being answered (None outside a request)."""

access_log = logging.getLogger("kmo_ledger.access")
log = logging.getLogger("kmo_ledger.api")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PROBLEM_MEDIA_TYPE = b"application/problem+json"
MAX_PROBLEM_BYTES = 64 * 1024


class OperationsSettings(BaseSettings):
    """``KMO_LEDGER_READY_MAX_LAG``: how many notifications the read models may
    lag behind the store and still be ready (``/readyz``)."""

    model_config = SettingsConfigDict(env_prefix="KMO_LEDGER_", extra="ignore")
    ready_max_lag: int = Field(default=1000, ge=0, le=1_000_000_000)


def install(app: FastAPI) -> None:
    """Observe every request of ``app``: call it after the other middleware is
    added, so the request id and the access line cover the gate's 401 and 413
    answers too."""
    settings = OperationsSettings()
    app.state.metrics = Metrics()
    app.state.ready_max_lag = settings.ready_max_lag
    app.state.catch_up = CatchUp()
    app.add_middleware(RequestObserver, metrics=app.state.metrics)


def observe_commits(ledger: Any, metrics: Metrics) -> None:
    """Count the ledger's group commits (a ledger without one, as a test's stand-in, is left alone)."""
    commits = getattr(ledger, "commits", None)
    if commits is not None:
        commits.observer = metrics.committed


# ---------------------------------------------------------------------- metrics

COMMIT_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
GROUP_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def shared_across_processes() -> bool:
    """Whether this process writes its figures to ``PROMETHEUS_MULTIPROC_DIR``
    (decided by prometheus_client when it is first imported)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class Metrics:
    """The figures of one app, in a registry of its own; under several workers,
    the registry reads every worker's files."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        own: CollectorRegistry | None = self.registry
        if shared_across_processes():
            MultiProcessCollector(self.registry)
            own = None  # each worker's figures are collected from the files
        self.requests = Counter(
            "kmo_ledger_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=own,
        )
        self.latency = Histogram(
            "kmo_ledger_http_request_duration_seconds",
            "Seconds from a request's arrival to the end of its answer, by method and route template",
            ["method", "route"],
            registry=own,
        )
        self.commands = Counter(
            "kmo_ledger_commands",
            "Commands (POST and PUT under /v1) by operation id and outcome: accepted, or the problem code "
            "that refused it",
            ["command", "outcome"],
            registry=own,
        )
        self.refusals = Counter(
            "kmo_ledger_refusals", "Answers that were a problem, by its code", ["code"], registry=own
        )
        self.commit_seconds = Histogram(
            "kmo_ledger_commit_seconds",
            "Seconds to write one transaction of the group commit, the writer's turn included",
            buckets=COMMIT_SECONDS,
            registry=own,
        )
        self.commit_group_size = Histogram(
            "kmo_ledger_commit_group_size",
            "Commands whose events one transaction of the group commit wrote",
            buckets=GROUP_SIZES,
            registry=own,
        )
        self.read_models_lag = Gauge(
            "kmo_ledger_read_models_lag",
            "Notifications recorded that the read models did not hold yet, when last measured "
            "(at each scrape and readiness check)",
            registry=own,
            multiprocess_mode="mostrecent",
        )

    def committed(self, saves: int, seconds: float) -> None:
        """The group commit's observer (:class:`ledger.storage.writer.GroupCommit`)."""
        self.commit_seconds.observe(seconds)
        self.commit_group_size.observe(saves)

    def request(self, method: str, route: str, operation: str | None, status: int, code: str | None, seconds: float):
        method = method if method in METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if code is not None:
            self.refusals.labels(code).inc()
        if operation is not None and method in COMMAND_METHODS and route.startswith("/v1/"):
            outcome = "accepted" if status < 400 else code or f"status_{status}"
            self.commands.labels(operation, outcome).inc()

    def exposition(self) -> bytes:
        """Every figure in Prometheus' text format."""
        return generate_latest(self.registry)


# ---------------------------------------------------------------------- requests


def given_or_new_request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if _GIVEN_REQUEST_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


def route_of(scope: Scope) -> tuple[str, str | None]:
    """The route template a request went to, in full (``/v1/wallets/{en}``), and
    its operation id; for a request the gate answered before routing, the
    operation of the OpenAPI document it would have gone to; ``unmatched``
    for a path of no route."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if template is not None:
        operation = getattr(route, "operation_id", None) or getattr(route, "name", None)
        return _with_prefix(scope["path"], template), operation
    app = scope.get("app")
    if app is None:
        return "unmatched", None
    table = getattr(app.state, "declared_routes", None)
    if table is None:
        table = app.state.declared_routes = DeclaredRoutes.of(app)
    return table.match(scope["path"], scope["method"])


def _with_prefix(path: str, template: str) -> str:
    """``template`` with the prefix its router was included under, read off the
    request's ``path`` (a prefix is literal: the segments ``path`` has beyond
    the template's)."""
    extra = path.rstrip("/").count("/") - template.rstrip("/").count("/")
    if extra <= 0:
        return template
    return "/".join(path.split("/")[: extra + 1]) + template


class DeclaredRoutes:
    """The operations of the app's OpenAPI document, to name a request the gate
    answered before it was routed."""

    def __init__(self, routes: list[tuple[re.Pattern[str], str, dict[str, str]]]):
        self.routes = routes

    @classmethod
    def of(cls, app: Any) -> DeclaredRoutes:
        try:
            paths = app.openapi().get("paths", {})
        except Exception:
            log.exception("the OpenAPI document cannot be built: requests refused before routing are unmatched")
            paths = {}
        routes = []
        for template, operations in paths.items():
            pattern = "".join(
                "[^/]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}]+\})", template)
            )
            methods = {method.upper(): operation.get("operationId") for method, operation in operations.items()}
            routes.append((re.compile(pattern), template, methods))
        return cls(routes)

    def match(self, path: str, method: str) -> tuple[str, str | None]:
        found = None
        for pattern, template, methods in self.routes:
            if pattern.fullmatch(path):
                if method in methods:
                    return template, methods[method]
                found = found or (template, None)  # another method's path: a 405
        return found or ("unmatched", None)


class _Answer:
    """What the observer saw of an answer: status, whether it is a problem, its body."""

    __slots__ = ("status", "problem", "body", "recorded")

    def __init__(self) -> None:
        self.status: int | None = None
        self.problem = False
        self.body = b""
        self.recorded = False

    def code(self) -> str | None:
        if not self.problem:
            return None
        try:
            code = orjson.loads(self.body).get("code")
        except (ValueError, AttributeError):
            return None
        return code if isinstance(code, str) else None


class RequestObserver(HttpMiddleware):
    """ASGI middleware: the request id, the access line and the request's metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        rid = given_or_new_request_id(scope)
        echoed = (b"x-request-id", rid.encode("ascii"))
        answer = _Answer()

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                headers = list(message.get("headers", ()))
                answer.problem = any(
                    name.lower() == b"content-type" and value.startswith(PROBLEM_MEDIA_TYPE) for name, value in headers
                )
                message = {**message, "headers": [*headers, echoed]}
            elif message["type"] == "http.response.body":
                if answer.problem and len(answer.body) < MAX_PROBLEM_BYTES:
                    answer.body += message.get("body", b"")
                if not message.get("more_body", False):  # counted before the client has it all
                    self._record(scope, rid, answer, time.perf_counter() - started)
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, observed)
        except Exception as error:
            if answer.status is None:  # answered here, so that it carries the request id too
                await self._internal_error(scope, receive, observed, error)
            raise
        finally:
            request_id.reset(token)
            if not answer.recorded:  # no answer at all, or one cut short
                self._record(scope, rid, answer, time.perf_counter() - started)

    @staticmethod
    async def _internal_error(scope: Scope, receive: Receive, send: Send, error: Exception) -> None:
        """The app's own answer to an unexpected error (its handler for
        ``Exception``, which logs it); Starlette's outer error middleware then
        sees the answer sent and only re-raises."""
        app = scope.get("app")
        handlers = getattr(app, "exception_handlers", {})
        handler = handlers.get(500) or handlers.get(Exception)
        if handler is None:
            return
        request = Request(scope, receive)
        if inspect.iscoroutinefunction(handler):
            response = await handler(request, error)
        else:
            response = await run_in_threadpool(handler, request, error)
        await response(scope, receive, send)

    def _record(self, scope: Scope, rid: str, answer: _Answer, seconds: float) -> None:
        answer.recorded = True
        status = answer.status or 500
        code = answer.code() if answer.status is not None else "internal_error"
        route, operation = route_of(scope)
        method = scope["method"]
        self.metrics.request(method, route, operation, status, code, seconds)
        if access_log.isEnabledFor(logging.INFO):
            line: dict[str, Any] = {"request_id": rid, "method": method, "route": route, "status": status}
            caller = scope.get("state", {}).get("caller")
            if caller is not None:
                line["key_id"] = caller.key_id
            if code is not None:
                line["code"] = code
            line["duration_ms"] = round(seconds * 1000, 2)
            access_log.info("%s %s %d", method, route, status, extra=line)


# ---------------------------------------------------------------------- log lines

_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message,
    the request id of the request being answered, the record's own fields
    (``extra``) and, for an error, its traceback as ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            line["request_id"] = current
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def log_config(level: str = "INFO") -> dict[str, Any]:
    """The logging set-up of ``kmo-ledger serve`` (uvicorn's ``log_config``):
    every line on standard error as JSON, the ledger's and uvicorn's alike;
    uvicorn's own access lines are off (the ledger writes one per request)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "kmo_ledger": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
