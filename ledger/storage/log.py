"""The notification log read as a stream: every stored row in the order it was
recorded, a batch at a time, so a million events are read in the memory of one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

BATCH = 500


def notifications(ledger: Any, topics: Sequence[str], stop: int | None = None) -> Iterator[Any]:
    """Stream the notification log (only ``topics``) in batches, up to ``stop``:
    never more than one batch in memory."""
    start = 1
    while True:
        batch = ledger.recorder.select_notifications(start, BATCH, stop=stop, topics=topics)
        if not batch:
            return
        yield from batch
        start = batch[-1].id + 1
        if stop is not None and start > stop:
            return


def event_type(topic: str) -> str:
    """``ledger.events:OwnShareDeposited`` -> ``OwnShareDeposited``."""
    return topic.rsplit(":", 1)[-1]
