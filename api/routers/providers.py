"""The provider directory (#20): where a provider's notices go (e-mail,
webhook). Kept in a table beside the notices, not in the event log: a webhook
secret can be replaced and is never shown again (``webhook_secret_set``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import Field, field_validator, model_validator

from api.params import ProviderNumber
from api.routers.declare import operation
from api.routers.notices import BackOffice, Notices
from api.schemas import RequestBody, ResponseBody, example
from ledger.domain.commands import EmailAddress
from ledger.domain.errors import NotFound
from ledger.domain.identifiers import provider_number
from ledger.domain.text import Line
from ledger.notices.channels import secret_problem, webhook_url_problem
from ledger.notices.derive import ProviderEntry

router = APIRouter(prefix="/providers", tags=["providers"])


class ProviderIn(RequestBody):
    model_config = example(
        name="Opleidingen Janssens",
        email="aanvragen@janssens-opleidingen.be",
        webhook_url="https://janssens-opleidingen.be/kmo/hooks",
        webhook_secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    name: Annotated[Line, Field(min_length=1, max_length=200)]
    email: EmailAddress | None = None
    webhook_url: Annotated[str | None, Field(max_length=2000)] = Field(
        default=None, description="https; plain http only to a loopback address"
    )
    webhook_secret: Annotated[str | None, Field(max_length=200)] = Field(
        default=None, description="`whsec_` and base64 of 24 to 64 bytes; needed with a webhook URL; never shown again"
    )

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        problem = webhook_url_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        problem = secret_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _secret_with_url(self) -> ProviderIn:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("a webhook URL needs its webhook_secret")
        return self


class ProviderOut(ResponseBody):
    number: str = Field(examples=["DV.O207084"])
    name: str
    email: str | None
    webhook_url: str | None
    webhook_secret_set: bool = Field(description="Whether a webhook secret is on file (it is never shown)")
    updated_at: datetime


def _out(entry: ProviderEntry, secret: str | None, updated: str) -> dict[str, object]:
    return {
        "number": entry.number,
        "name": entry.name,
        "email": entry.email,
        "webhook_url": entry.webhook_url,
        "webhook_secret_set": bool(secret),
        "updated_at": updated,
    }


@operation(router.put, "/{number}", "Put a provider in the directory", ProviderOut, 403, 503)
def put_provider(number: ProviderNumber, body: ProviderIn, _caller: BackOffice, service: Notices):
    """Where the provider's notices go from now on: e-mail, a webhook (signed per
    Standard Webhooks with its secret), or both. Replaces the entry whole."""
    canonical = provider_number(number)
    store = service.notifier.store
    entry = ProviderEntry(canonical, body.name, body.email, body.webhook_url)
    store.put_provider(entry, body.webhook_secret, service.ledger.clock.now())
    found = store.provider(canonical)
    assert found is not None
    return _out(*found)


@operation(router.get, "/{number}", "Read a provider's directory entry", ProviderOut, 403, 404, 503)
def get_provider(number: ProviderNumber, _caller: BackOffice, service: Notices):
    """The entry without its webhook secret (`webhook_secret_set` says whether there is one)."""
    found = service.notifier.store.provider(provider_number(number))
    if found is None:
        raise NotFound(f"no provider {number} in the directory")
    return _out(*found)
