"""Problem details (RFC 9457): every refusal, in one shape and media type.

One table maps a stable machine ``code`` to its HTTP status; one handler per
kind of exception turns it into ``application/problem+json``. A broken rule is
a 422, never a 500; an unexpected failure is a 500 without a trace.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.transport import TOO_MANY_CONNECTIONS
from ledger.domain.errors import LedgerError
from ledger.storage.records import RecordUnverifiable

log = logging.getLogger("kmo_ledger.api")
MEDIA_TYPE = "application/problem+json"

STATUS_BY_CODE = {
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "already_exists": 409,
    "version_mismatch": 412,
    "payload_too_large": 413,
    "internal_error": 500,
    "read_models_unavailable": 503,
    "store_busy": 503,
    "store_unavailable": 503,
}
"""Every other code (validation errors and refusals by a rule) is a 422."""

TITLES = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "It exists already",
    412: "The wallet has changed since the version given",
    413: "The request body is too large",
    422: "The request is not valid",
    500: "Internal error",
    503: "The ledger cannot answer now",
}


def status_of(code: str) -> int:
    return STATUS_BY_CODE.get(code, 422)


def problem_body(code: str, detail: str, title: str | None = None, status: int | None = None) -> dict[str, Any]:
    """A problem's JSON: what :func:`problem` answers and the OpenAPI document shows."""
    status = status or status_of(code)
    return {
        "type": f"urn:kmo-ledger:problem:{code}",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }


def problem_codes() -> list[str]:
    """Every ``code`` the API answers: those of the ledger's refusals (every
    :class:`LedgerError`, the edge's own included), of the HTTP level, and the
    transport's ``too_many_connections``. Read when the OpenAPI document is
    generated, so a refusal defined in any module imported by then is listed."""
    codes: set[str] = {json.loads(TOO_MANY_CONNECTIONS)["code"], *STATUS_BY_CODE, *HTTP_CODES.values()}
    refusals: list[type[LedgerError]] = [LedgerError, RecordUnverifiable]
    while refusals:
        refusal = refusals.pop()
        codes.add(refusal.code)
        refusals.extend(refusal.__subclasses__())
    return sorted(codes)


class ValidationErrorOut(BaseModel):
    """One invalid part of a request."""

    location: str = Field(
        description="Where: `body`, `body.` and the field's path (`body.cost_lines.0.amount`), "
        "`query.`, `path.` or `header.` and the parameter's name",
        examples=["body.amount"],
    )
    message: str = Field(description="What is wrong with it", examples=["at most two decimals (cents) are allowed"])


class ProblemDetails(BaseModel):
    """An RFC 9457 problem; ``code`` is the stable machine code scripts switch on."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                problem_body(
                    "ceiling_exceeded",
                    "the yearly ceiling is used up: current remaining 0.00",
                    "The yearly ceiling is used up",
                )
            ]
        }
    )
    type: str = Field(description="`urn:kmo-ledger:problem:` followed by the code")
    title: str
    status: int
    detail: str
    code: str = Field(
        description="The stable machine code; its `type` is `urn:kmo-ledger:problem:` and the code",
        json_schema_extra=lambda schema: schema.update(enum=problem_codes()),
    )
    errors: list[ValidationErrorOut] | SkipJsonSchema[None] = Field(
        default=None, description="Only with `validation_error`: each invalid part of the request and why"
    )


class ApiError(LedgerError):
    """A refusal at the edge (authentication, authorisation, HTTP level)."""


class Unauthorized(ApiError):
    code = "unauthorized"
    title = TITLES[401]


class Forbidden(ApiError):
    code = "forbidden"
    title = TITLES[403]


class ReadModelsUnavailable(ApiError):
    """The read models could not be opened or caught up: the reads that need them
    answer 503 (the cause is logged, not shown); every other read keeps working."""

    code = "read_models_unavailable"
    title = TITLES[503]


def problem(
    code: str,
    detail: str,
    title: str | None = None,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    status = status or status_of(code)
    body = problem_body(code, detail, title, status)
    if errors is not None:
        body["errors"] = errors
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="kmo-ledger"', **(headers or {})}
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _ledger_error(_request: Request, error: LedgerError) -> JSONResponse:
    return problem(error.code, error.detail, error.title)


MESSAGES = {
    "json_invalid": "not valid JSON",
    "missing": "required",
    "extra_forbidden": "not a field of this request",
    "model_attributes_type": "a JSON object is expected",
    "dict_type": "a JSON object is expected",
}
"""Pydantic's words for the commonest errors, in the ledger's own."""


def error_message(error: dict[str, Any]) -> str:
    """An invalid field's message in plain English: what a validator said, without
    pydantic's "Value error, " prefix; the value sent is never repeated."""
    cause = (error.get("ctx") or {}).get("error") if error.get("type") == "value_error" else None
    if cause is not None:
        return str(cause)
    return MESSAGES.get(error.get("type", ""), error.get("msg", "invalid"))


def error_location(error: dict[str, Any]) -> str:
    """Where the error is: ``body.amount``; a JSON syntax error is in the body, not
    at the character offset pydantic gives as a field (``body.17``)."""
    parts = error.get("loc", ())
    if error.get("type") == "json_invalid":
        parts = parts[:1]
    return ".".join(str(part) for part in parts)


def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    errors: list[dict[str, Any]] = []
    for e in error.errors():  # a path parameter is also read by the authorisation: named once
        found = {"location": error_location(e), "message": error_message(e)}
        if found not in errors:
            errors.append(found)
    detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors[:5]) or "the request is not valid"
    return problem("validation_error", detail, errors=errors)


HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    code = HTTP_CODES.get(error.status_code, "validation_error")
    status = error.status_code if code != "validation_error" else 422
    detail = error.detail if isinstance(error.detail, str) else TITLES.get(status, "error")
    if error.status_code == 404 and detail == "Not Found":
        detail = "no such resource"
    allowed = (getattr(error, "headers", None) or {}).get("Allow")
    if error.status_code == 405 and allowed:
        detail = f"this path does not take {request.method} (it takes {allowed})"
    return problem(code, detail, status=status, headers=getattr(error, "headers", None))


def _unexpected(_request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=error)
    return problem("internal_error", "the server failed to answer; nothing about the cause is shown here")


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LedgerError, _ledger_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


PROBLEM_SCHEMA = {"$ref": "#/components/schemas/ProblemDetails"}
"""ProblemDetails in the generated document."""

DECLARED_PROBLEMS = {
    401: ("no or unknown API key", "unauthorized", "send Authorization: Bearer <key>"),
    403: ("the key's role may not do this", "forbidden", "an auditor key may not do this (allowed: back-office)"),
    404: (
        "no such wallet or application (or not the provider's own)",
        "not_found",
        "no application 4f1c... for enterprise 0403170701",
    ),
    409: ("it exists already", "already_exists", "a wallet for enterprise 0403170701 exists already"),
    412: (
        "If-Match names another version than the wallet's",
        "version_mismatch",
        "the wallet is at version 6, not 5: read it again",
    ),
    422: (
        "a validation error, a refusal by a rule, or a reused Idempotency-Key",
        "validation_error",
        "body.amount: at most two decimals (cents) are allowed",
    ),
    503: (
        "the read models cannot answer now (reads of one wallet still do)",
        "read_models_unavailable",
        "the read models are stuck after notification 41 of 57; reads of one wallet still answer",
    ),
}
"""The problems an operation names by status (:mod:`api.routers.declare`): what
each means there, and an example code and detail."""

ANSWERED_EVERYWHERE = {
    405: (
        "the path does not take this method (the Allow header names those it does)",
        "method_not_allowed",
        "this path does not take GET (it takes POST)",
    ),
    413: (
        "the request body is larger than KMO_LEDGER_MAX_BODY_BYTES (1 MiB unless set)",
        "payload_too_large",
        "the request body is larger than 1048576 bytes",
    ),
    500: (
        "the server failed; nothing about the cause is shown",
        "internal_error",
        "the server failed to answer; nothing about the cause is shown here",
    ),
    503: (
        "the ledger cannot answer now: too many connections, the store busy or out of reach, "
        "or (reads across wallets) the read models stuck; nothing was recorded",
        "store_unavailable",
        "PostgreSQL at db.example:5432 gave no connection within 5 s (too many clients); "
        "nothing was recorded, try again",
    ),
}
"""What any route may answer, whatever it declares: another method on its
path, a body over the gate's cap, a failure nobody foresaw, and a server that
cannot answer now. Added to every operation of the document (:mod:`api.app`)."""


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error statuses, each a ProblemDetails
    (moved to ``application/problem+json`` when the schema is generated)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, code, detail = DECLARED_PROBLEMS[status]
        responses[status] = {
            "model": ProblemDetails,
            "description": description,
            "content": {"application/json": {"example": problem_body(code, detail, status=status)}},
        }
    return responses


def documented_problem(status: int) -> dict[str, Any]:
    """The document's response for a status every route may answer (:data:`ANSWERED_EVERYWHERE`)."""
    description, code, detail = ANSWERED_EVERYWHERE[status]
    example = problem_body(code, detail, status=status)
    return {"description": description, "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA, "example": example}}}
