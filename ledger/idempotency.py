"""Idempotency-Keys, in one home: a request's first answer is stored as a record
(in the same transaction as the events it produced), a retry with the same key
and request gets it back and records nothing, the same key with another
request is refused (``idempotency_key_reused``). Keys are scoped (the API
scopes them to the caller's key).

A stored answer is replayed only when its digest matches its content
(:func:`ledger.storage.records.checked_record`). One that fails (changed in the
store, or stored before answers carried a digest) is neither replayed nor
answered again: the request is refused (``record_unverifiable``) and nothing is
done, because the first request may well have taken effect (a payout ordered)
and running it again would do it twice; the store's key refuses a second answer
anyway. The caller reads the resource to learn what happened."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import AggregateRecorder

from ledger.domain.errors import IdempotencyKeyReused
from ledger.storage.records import IdempotencyRecorded, Record, RecordUnverifiable, checked_record, idempotency_id


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


def check_first_answer(recorder: AggregateRecorder, idempotency: Idempotency) -> None:
    """Raise :class:`AlreadyAnswered` with the stored first answer, or
    ``idempotency_key_reused`` when it answered another request; nothing when new.
    A stored answer that fails its integrity check is ``record_unverifiable``."""
    try:
        first = checked_record(recorder, IdempotencyRecorded, idempotency_id(idempotency.scope, idempotency.key))
    except RecordUnverifiable:
        raise RecordUnverifiable(
            "the first answer stored for this Idempotency-Key failed its integrity check, so it is not "
            "replayed and the request is not run again (it may have taken effect): nothing was done; "
            "read the resource to see whether the first request took effect"
        ) from None
    if first is None:
        return
    if first.fingerprint != idempotency.fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was used before with another request; use a new key")
    raise AlreadyAnswered(first.status, first.body)


def answer_record(idempotency: Idempotency, result: Any, now: datetime) -> Record:
    """The record of the first answer to ``idempotency``'s request."""
    status, body = idempotency.render(result)
    return Record.made(
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
