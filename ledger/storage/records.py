"""One-event records that make a fact unique across the whole ledger: an
idempotency receipt, a claimed payment reference. The store's (id, version)
key turns a second claim into a conflict in the same transaction as the
wallet's events.

A record is not part of any hash chain, so each carries a digest of its own:
SHA-256 over its canonical content, sealed when it is made (:meth:`OneOffEvent.sealed`,
:meth:`Record.made`). A record is read for use only through
:func:`checked_record`, which refuses one whose digest does not match (or that
has none), and ``kmo-ledger verify`` checks every stored record the same way.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import AggregateRecorder
from pydantic import BaseModel, ConfigDict

from ledger.domain.errors import LedgerError, ValidationFailed
from ledger.domain.identifiers import compact_payment_reference

RECORD_NAMESPACE = uuid.UUID("0e0c7a52-3b3e-4f4e-8a59-1d1b2c3d4e5f")
log = logging.getLogger("kmo_ledger.ledger")


class RecordUnverifiable(LedgerError):
    """A stored record failed its integrity check: it is not used (nothing is
    done on its strength); ``kmo-ledger verify`` names it."""

    code = "record_unverifiable"
    title = "A stored record failed its integrity check"


class Record:
    """An aggregate of exactly one event."""

    def __init__(self, event: OneOffEvent):
        self.id = event.originator_id
        self.version = 1
        self.event = event
        self._pending = [event]

    @classmethod
    def made(cls, event: OneOffEvent) -> Record:
        """A new record of ``event``, sealed with its digest."""
        return cls(event.sealed())

    def collect_events(self) -> list[OneOffEvent]:
        collected, self._pending = self._pending, []
        return collected


def record_digest(originator_id: UUID | str, version: int, type_name: str, content: dict[str, Any]) -> str:
    """SHA-256 over a record's canonical JSON content as stored (sorted keys), its
    id, version and type included, its own digest left out."""
    canonical = {k: v for k, v in content.items() if k != "digest"}
    canonical.update(originator_id=str(originator_id), originator_version=version, type=type_name)
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def record_problem(originator_id: UUID | str, version: int, type_name: str, stored: dict[str, Any]) -> str | None:
    """Why a record stored as ``stored`` (its JSON, decoded) cannot be trusted, or None."""
    digest = stored.get("digest")
    if digest is None:
        return "it was stored before records carried a digest, so its content cannot be checked"
    if digest != record_digest(originator_id, version, type_name, stored):
        return "its digest does not match its content: it was changed"
    return None


class OneOffEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    originator_id: UUID
    originator_version: int = 1
    timestamp: datetime
    digest: str | None = None
    """:func:`record_digest` of the record when it was made (None: stored before records carried one)."""

    def sealed(self) -> OneOffEvent:
        """This record with its digest filled in, over the JSON it is stored as."""
        content = self.model_dump(mode="json", exclude={"digest", "originator_id", "originator_version"})
        digest = record_digest(self.originator_id, self.originator_version, type(self).__name__, content)
        return self.model_copy(update={"digest": digest})

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


def checked_record(
    recorder: AggregateRecorder, record_class: type[OneOffEvent], record_id: UUID, unsealed: bool = False
) -> Any | None:
    """The record stored under ``record_id``, read from its stored row and used
    only once its digest matches: None when there is none;
    :class:`RecordUnverifiable` (logged, one line) when it fails its check or
    is not a ``record_class``. ``unsealed``: a record stored before records
    carried a digest is given too, for a caller that checks it otherwise."""
    rows = recorder.select_events(record_id, limit=1)
    if not rows:
        return None
    stored = rows[0]
    type_name = stored.topic.rsplit(":", 1)[-1]
    try:
        content = orjson.loads(stored.state)
    except orjson.JSONDecodeError:
        content = None
    if not isinstance(content, dict):
        problem: str | None = "it cannot be read"
    elif type_name != record_class.__name__:
        problem = f"it is stored as {type_name}, not as {record_class.__name__}"
    elif unsealed and content.get("digest") is None:
        problem = None
    else:
        problem = record_problem(stored.originator_id, stored.originator_version, type_name, content)
    if problem is None:
        try:
            return record_class.model_validate(
                content | {"originator_id": stored.originator_id, "originator_version": stored.originator_version}
            )
        except ValueError as error:
            problem = f"it cannot be read: {str(error).splitlines()[0]}"
    log.warning("stored %s %s not used: %s", record_class.__name__, record_id, problem)
    raise RecordUnverifiable(f"the stored {record_class.__name__} {record_id} is not used: {problem}")


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
