"""Events to stored rows and back, through pydantic (JSON mode) and orjson.

The library's default JSON transcoder cannot encode freezegun's datetimes;
pydantic's JSON mode can, and it gives the canonical form the hash chain uses.
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import Mapper, ProgrammingError, StoredEvent, Transcoder, Transcoding
from eventsourcing.utils import resolve_topic
from pydantic import BaseModel

from ledger.storage.topics import register, stored_topic


class OrjsonTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)

    def register(self, transcoding: Transcoding) -> None:
        raise ProgrammingError("events are pydantic models: no transcodings are registered")


class PydanticMapper(Mapper):
    """Stores each class under its stable topic (:mod:`ledger.storage.topics`)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        register()

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        state = domain_event.model_dump(mode="json", exclude={"originator_id", "originator_version"})
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=stored_topic(type(domain_event)),
            state=self.transcoder.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls: type[BaseModel] = resolve_topic(stored_event.topic)
        # pydantic parses the stored JSON straight into the model (faster than
        # decoding to a dict first); the id and version live in their columns.
        head = b'{"originator_id":"%s","originator_version":%d,' % (
            str(stored_event.originator_id).encode(),
            stored_event.originator_version,
        )
        return cls.model_validate_json(head + bytes(stored_event.state)[1:])
