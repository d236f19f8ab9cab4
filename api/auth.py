"""Who is calling and what that role may do: authentication once (at the gate,
before any body is read), authorisation once (the dependencies below).

Roles (API.md): ``back-office`` every command and read; ``provider`` only the
applications naming its own registration number (any other answers 404, as if
it did not exist); ``auditor`` every read, replay and verification;
``reconciler`` balances, totals and reconciliation reads.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.params import ApplicationId, EnterpriseNumber, ProviderNumber
from api.problems import Forbidden, Unauthorized
from api.reads import ReadModels
from api.settings import KEY_ID_DIGITS, ApiKey, Role
from ledger.application import KmoLedger
from ledger.domain.errors import NotFound
from ledger.domain.events import Actor
from ledger.domain.identifiers import provider_number

ALL_ROLES: tuple[Role, ...] = ("back-office", "provider", "auditor", "reconciler")


@dataclass(frozen=True)
class Caller:
    """An authenticated caller; ``provider`` is set for provider keys only,
    ``name`` when the keys file names the key."""

    key_id: str
    role: Role
    provider: str | None = None
    name: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(key_id=self.key_id, role=self.role, name=self.name)


def identify(keys: dict[str, ApiKey], authorization: str | None) -> Caller:
    """The caller named by an ``Authorization: Bearer <key>`` header."""
    if not authorization:
        raise Unauthorized("send the API key as Authorization: Bearer <key>")
    scheme, _, secret = authorization.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise Unauthorized("send the API key as Authorization: Bearer <key>")
    digest = hashlib.sha256(secret.encode()).hexdigest()
    key = keys.get(digest)
    if key is None:
        raise Unauthorized("unknown API key")
    # digest[:KEY_ID_DIGITS] is api.settings.key_id(secret)
    return Caller(key_id=digest[:KEY_ID_DIGITS], role=key.role, provider=key.provider, name=key.name)


def current_caller(request: Request) -> Caller:
    """The caller the gate authenticated (see :mod:`api.gate`); the bearer
    scheme is declared on every ``/v1`` operation in the OpenAPI document."""
    caller = getattr(request.state, "caller", None)
    if caller is None:
        raise Unauthorized("send the API key as Authorization: Bearer <key>")
    return caller


async def get_ledger(request: Request) -> KmoLedger:
    return request.app.state.ledger


LedgerDep = Annotated[KmoLedger, Depends(get_ledger)]


async def get_read_models(request: Request) -> ReadModels:
    return request.app.state.read_models


ReadModelsDep = Annotated[ReadModels, Depends(get_read_models)]
"""The views the cross-wallet reads answer from (caught up by each read)."""


def allow(*roles: Role) -> Callable[..., Caller]:
    """A dependency letting only ``roles`` through (403 for any other role).

    Dependencies that do no I/O are ``async``: FastAPI then calls them on the
    event loop instead of handing each to a worker thread."""

    async def check(request: Request) -> Caller:
        caller = current_caller(request)
        if caller.role not in roles:
            article = "an" if caller.role[0] in "aeiou" else "a"
            raise Forbidden(f"{article} {caller.role} key may not do this (allowed: {', '.join(roles)})")
        return caller

    return check


def check_reach(ledger: KmoLedger, en: str, application_id: str, caller: Caller) -> None:
    """A provider reaches only applications naming it: any other is a 404, as if absent."""
    try:
        provider = ledger.application_summary(en, application_id)["provider"]
    except NotFound:
        provider = None
    if provider != caller.provider:
        raise NotFound(f"no application {application_id} for enterprise {en}")


def application_in_reach(*roles: Role) -> Callable[..., Caller]:
    """Like :func:`allow`, and a provider reaches only applications naming it."""
    check = allow(*roles)

    async def reach(
        en: EnterpriseNumber, id: ApplicationId, caller: Annotated[Caller, Depends(check)], ledger: LedgerDep
    ) -> Caller:
        if caller.provider is not None:  # reads the wallet: off the event loop
            await run_in_threadpool(check_reach, ledger, en, id, caller)
        return caller

    return reach


async def own_inbox(
    provider: ProviderNumber, caller: Annotated[Caller, Depends(allow("back-office", "provider"))]
) -> str:
    """The canonical provider number of an inbox the caller may read."""
    number = provider_number(provider)
    if caller.provider is not None and caller.provider != number:
        raise NotFound(f"no inbox for provider {provider}")
    return number


Reader = Annotated[Caller, Depends(allow("back-office", "auditor", "reconciler"))]
"""Everyone but a provider."""
Auditing = Annotated[Caller, Depends(allow("back-office", "auditor"))]
ApplicationReader = Annotated[Caller, Depends(application_in_reach(*ALL_ROLES))]
InboxOf = Annotated[str, Depends(own_inbox)]
