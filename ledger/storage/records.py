"""One-event records that make a fact unique across the whole ledger: an
idempotency receipt, a claimed payment reference. The store's (id, version)
key turns a second claim into a conflict in the same transaction as the
wallet's events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from ledger.domain.errors import ValidationFailed
from ledger.domain.identifiers import compact_payment_reference

RECORD_NAMESPACE = uuid.UUID("0e0c7a52-3b3e-4f4e-8a59-1d1b2c3d4e5f")


class Record:
    """An aggregate of exactly one event."""

    def __init__(self, event: OneOffEvent):
        self.id = event.originator_id
        self.version = 1
        self.event = event
        self._pending = [event]

    def collect_events(self) -> list[OneOffEvent]:
        collected, self._pending = self._pending, []
        return collected


class OneOffEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    originator_id: UUID
    originator_version: int = 1
    timestamp: datetime

    def mutate(self, aggregate: Any) -> Record:
        return Record(self)


class IdempotencyRecorded(OneOffEvent):
    """The first answer to a request with an Idempotency-Key (kept forever, at least 30 days)."""

    scope: str
    key: str
    fingerprint: str
    status: int
    body: Any


class PaymentReferenceClaimed(OneOffEvent):
    """A structured payment reference (OGM/VCS) given to exactly one application."""

    reference: str
    enterprise_number: str
    application_id: str


def idempotency_id(scope: str, key: str) -> UUID:
    return uuid.uuid5(RECORD_NAMESPACE, f"idempotency/{scope}/{key}")


def reference_id(compact_reference: str) -> UUID:
    return uuid.uuid5(RECORD_NAMESPACE, f"payment-reference/{compact_reference}")


def claim_id(payment_reference: str) -> UUID:
    """The id of the claim on a structured payment reference, in any spelling of it."""
    compact = compact_payment_reference(payment_reference)
    if compact is None:
        raise ValidationFailed(f"{payment_reference!r} is not a structured payment reference")
    return reference_id(compact)
