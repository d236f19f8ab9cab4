"""Answering a command: Idempotency-Key, If-Match and the response body.

With an ``Idempotency-Key`` the ledger stores the first answer (status and
JSON body) in the same transaction as the command's events; a retry with the
same key and body gets that answer back and records nothing, after a restart
too; the same key with another body is a 422 ``idempotency_key_reused``. Keys
are scoped to the caller's API key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

import orjson
from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import Caller, allow, application_in_reach
from api.params import never_null
from api.settings import Role
from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain.clock import brussels_date
from ledger.domain.errors import VersionMismatch
from ledger.domain.identifiers import canonical_enterprise_number
from ledger.domain.wallet import Wallet
from ledger.idempotency import AlreadyAnswered, Idempotency
from ledger.summaries import application_summary, wallet_summary

T = TypeVar("T")


class CommandBody(Protocol):
    """A request body that makes the ledger's command."""

    def command(self) -> c.Command: ...


REPLAYED_HEADER = "Idempotent-Replayed"


class Answer(JSONResponse):
    """A command's JSON answer, encoded by orjson (the same compact JSON as the
    standard library's, in a fraction of the time)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


_ETAG = re.compile(r'^"?(\d{1,10})"?$')


IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=64,
        description='The wallet version this command expects (an ETag of a read, e.g. "5"); '
        "a stale one is a 412 and nothing is recorded",
        json_schema_extra=never_null,
    ),
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Send one with every POST: a retry with the same key and body returns the "
        "first answer and records nothing new; the same key with another body is a 422",
        examples=["7d0c8f3e-2b1a-4c5d-9e8f-0a1b2c3d4e5f"],
        json_schema_extra=never_null,
    ),
]


def canonical_path(request: Request) -> str:
    """The request's path as the ledger names what it acts on: the route's template
    with the enterprise number in its canonical form, so one request spelled
    another way (``BE 0403.170.701`` for ``0403170701``) has the same fingerprint."""
    route = request.scope.get("route")
    if route is None:
        return str(request.scope["path"])
    params = dict(request.path_params)
    if "en" in params:
        params["en"] = canonical_enterprise_number(params["en"])
    return str(route.path_format.format(**params))


def expected_version(value: str | None) -> int | None:
    """The wallet version an ``If-Match`` header expects (``*`` or none: any)."""
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.match(value.strip())
    if match is None:
        raise VersionMismatch(f"If-Match {value!r} names no version of this wallet: read it again")
    return int(match.group(1))


class AnswerSource:
    """Where a command's answer is read: inside the ledger's lock, from the wallet
    the command decided on; or, without an Idempotency-Key, afterwards through
    the ledger's own (locked) reads."""

    def __init__(self, ledger: KmoLedger, en: str, wallet: Wallet | None = None):
        self.ledger, self.en, self._wallet = ledger, en, wallet

    def wallet(self) -> dict[str, Any]:
        if self._wallet is None:
            return self.ledger.wallet_summary(self.en)
        today = brussels_date(self.ledger.clock.now())
        return wallet_summary(self._wallet.state, self._wallet.version, today)

    def application(self, application_id: str) -> dict[str, Any]:
        if self._wallet is None:
            return self.ledger.application_summary(self.en, application_id)
        return application_summary(self._wallet.application(application_id))


def _wallet_of(result: Any) -> Wallet:
    return result if isinstance(result, Wallet) else result[0]


def _json(body: BaseModel | dict[str, Any]) -> Any:
    if isinstance(body, BaseModel):
        return body.model_dump(mode="json", by_alias=True)
    return body


def fingerprint(method: str, path: str, payload: BaseModel | None) -> str:
    """SHA-256 over the method, the path and the canonical JSON of the body."""
    body = b"" if payload is None else orjson.dumps(payload.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


@dataclass(frozen=True)
class Posting:
    """One POST: where it went and the Idempotency-Key it carried."""

    method: str
    path: str
    key: str | None

    def idempotency(
        self, caller: Caller, payload: BaseModel | None, render: Callable[[Any], tuple[int, Any]]
    ) -> Idempotency | None:
        if self.key is None:
            return None
        return Idempotency(caller.key_id, self.key, fingerprint(self.method, self.path, payload), render)

    def run(
        self,
        ledger: KmoLedger,
        en: str,
        caller: Caller,
        payload: BaseModel | None,
        command: Callable[..., T],
        render: Callable[[T, AnswerSource], dict[str, Any]],
        status: int = 200,
        expected_version: int | None = None,
    ) -> JSONResponse:
        """Run ``command(**options)`` and answer with ``render`` of its result.

        ``render`` gives the route's response model as its JSON already (the
        ledger's views are built in that shape): it goes out as it is, not
        parsed into the model and dumped again, which cost a tenth of a
        command's server time. The API tests hold every answer to its route's
        response model (tests/api/conftest.py)."""
        answered: dict[str, Any] = {}

        def render_in_lock(result: T) -> tuple[int, Any]:
            answered["body"] = _json(render(result, AnswerSource(ledger, en, _wallet_of(result))))
            return status, answered["body"]

        options: dict[str, Any] = {}
        idempotency = self.idempotency(caller, payload, render_in_lock)
        if idempotency is not None:
            options["idempotency"] = idempotency
        if expected_version is not None:
            options["if_match"] = expected_version
        try:
            result = command(**options)
        except AlreadyAnswered as first:
            return Answer(first.body, first.status, headers={REPLAYED_HEADER: "true"})
        body = answered["body"] if "body" in answered else _json(render(result, AnswerSource(ledger, en)))
        return Answer(body, status)

    def run_once(
        self, ledger: KmoLedger, caller: Caller, payload: BaseModel | None, produce: Callable[[], BaseModel]
    ) -> JSONResponse:
        """For work across wallets (the deadline run): :meth:`KmoLedger.answer_once`."""
        idempotency = self.idempotency(caller, payload, lambda result: (200, result))
        if idempotency is None:
            return Answer(_json(produce()))
        try:
            status, body = ledger.answer_once(idempotency, lambda: _json(produce()))
        except AlreadyAnswered as first:
            return Answer(first.body, first.status, headers={REPLAYED_HEADER: "true"})
        return Answer(body, status)


@dataclass(frozen=True)
class Command:
    """What a command route needs from its request, resolved by ONE dependency
    (FastAPI's cost grows with every dependency a route has): the authorised
    caller, the ledger, the POST with its Idempotency-Key, the If-Match version."""

    caller: Caller
    ledger: KmoLedger
    posting: Posting
    expected: int | None = None

    def run(
        self,
        en: str,
        payload: BaseModel | None,
        command: Callable[..., T],
        render: Callable[[T, AnswerSource], dict[str, Any]],
        status: int = 200,
    ) -> JSONResponse:
        return self.posting.run(self.ledger, en, self.caller, payload, command, render, status, self.expected)

    def on_application(
        self,
        en: str,
        application_id: str,
        payload: CommandBody | None,
        answer: str | None = None,
        status: int = 200,
    ) -> JSONResponse:
        """Decide ``payload``'s command (a confirmation when there is no body) on the
        application and answer with the application; with ``answer``, what the use
        case answers goes beside it under that name (``order_id``, ``outcome``)."""
        command = c.ConfirmApplication() if payload is None else payload.command()

        def run(**options: Any) -> tuple[Wallet, Any]:
            return self.ledger.handle(en, application_id, command, self.caller.actor, **options)

        def render(result: tuple[Wallet, Any], views: AnswerSource) -> dict[str, Any]:
            application = views.application(application_id)  # ApplicationOut
            return application if answer is None else {answer: result[1], "application": application}

        return self.run(en, payload, run, render, status)

    def run_once(self, payload: BaseModel | None, produce: Callable[[], BaseModel]) -> JSONResponse:
        return self.posting.run_once(self.ledger, self.caller, payload, produce)


def command_for(*roles: Role, versioned: bool = True, reach: bool = False) -> Callable[..., Any]:
    """The dependency of a command route open to ``roles``. Without
    ``versioned`` it takes no If-Match (nothing to be a version of yet); with
    ``reach`` a provider acts only on applications naming it (any other is a
    404). ``caller`` is given as a default: this module's postponed
    annotations cannot name a local like ``check``."""
    check = allow(*roles)

    def command(request: Request, caller: Caller, key: str | None, if_match: str | None) -> Command:
        posting = Posting(request.method, canonical_path(request), key)
        return Command(caller, request.app.state.ledger, posting, expected_version(if_match))

    if not versioned:

        async def unversioned(
            request: Request, caller: Caller = Depends(check), key: IdempotencyKeyHeader = None
        ) -> Command:
            return command(request, caller, key, None)

        return unversioned
    if not reach:

        async def versioned_command(
            request: Request,
            caller: Caller = Depends(check),
            key: IdempotencyKeyHeader = None,
            if_match: IfMatchHeader = None,
        ) -> Command:
            return command(request, caller, key, if_match)

        return versioned_command

    async def reaching(
        request: Request,
        caller: Caller = Depends(application_in_reach(*roles)),
        key: IdempotencyKeyHeader = None,
        if_match: IfMatchHeader = None,
    ) -> Command:
        # the reach is a dependency of its own, solved before this one's headers:
        # another provider's application is a 404 whatever else the request says
        return command(request, caller, key, if_match)

    return reaching


BackOfficeCommand = Annotated[Command, Depends(command_for("back-office"))]
BackOfficeFirstCommand = Annotated[Command, Depends(command_for("back-office", versioned=False))]
"""A back-office command on no existing wallet version (opening one, a run across wallets)."""
ProviderCommand = Annotated[Command, Depends(command_for("back-office", "provider", reach=True))]
"""A command the provider named in the application may give too (confirm, refuse, complete)."""
