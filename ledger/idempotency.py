"""Idempotency-Keys, in one home: a request's first answer is stored as a record
(in the same transaction as the events it produced), a retry with the same key
and request gets it back and records nothing, the same key with another
request is refused (``idempotency_key_reused``). Keys are scoped (the API
scopes them to the caller's key)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from eventsourcing.application import AggregateNotFoundError, Repository

from ledger.domain.errors import IdempotencyKeyReused
from ledger.storage.records import IdempotencyRecorded, Record, idempotency_id


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key with its scope, the fingerprint of its request, and how
    a result becomes the answer stored (status, JSON body)."""

    scope: str
    key: str
    fingerprint: str
    render: Callable[[Any], tuple[int, Any]]


class AlreadyAnswered(Exception):
    """The same key and request were answered before: here is that first answer."""

    def __init__(self, status: int, body: Any):
        super().__init__(status)
        self.status, self.body = status, body


def check_first_answer(repository: Repository, idempotency: Idempotency) -> None:
    """Raise :class:`AlreadyAnswered` with the stored first answer, or
    ``idempotency_key_reused`` when it answered another request; nothing when new."""
    try:
        record: Record = repository.get(idempotency_id(idempotency.scope, idempotency.key))
    except AggregateNotFoundError:
        return
    first = cast(IdempotencyRecorded, record.event)
    if first.fingerprint != idempotency.fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used before with another request; use a new key")
    raise AlreadyAnswered(first.status, first.body)


def answer_record(idempotency: Idempotency, result: Any, now: datetime) -> Record:
    """The record of the first answer to ``idempotency``'s request."""
    status, body = idempotency.render(result)
    return Record(
        IdempotencyRecorded(
            originator_id=idempotency_id(idempotency.scope, idempotency.key),
            timestamp=now,
            scope=idempotency.scope,
            key=idempotency.key,
            fingerprint=idempotency.fingerprint,
            status=status,
            body=orjson.loads(orjson.dumps(body)),
        )
    )
