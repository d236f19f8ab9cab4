"""Stored topics: the name each stored class is kept under in the event store.

Stored rows never change, so the name a class was first stored under stays its
name when its module moves: a wallet event is ``ledger.events:<its type>``
(the audit contract's type names), a record ``ledger.records:<its class>``, a
snapshot ``ledger.application:WalletSnapshot``. The mapper writes these names
and resolves them back (:func:`register` tells the library's topic resolver).
"""

from __future__ import annotations

from eventsourcing.utils import get_topic, register_topic

from ledger.domain.events import EVENT_TYPES
from ledger.storage.records import IdempotencyRecorded, PaymentReferenceClaimed
from ledger.storage.snapshots import WalletSnapshot

STORED_TOPICS: dict[type, str] = {
    **{cls: f"ledger.events:{name}" for name, cls in EVENT_TYPES.items()},
    IdempotencyRecorded: "ledger.records:IdempotencyRecorded",
    PaymentReferenceClaimed: "ledger.records:PaymentReferenceClaimed",
    WalletSnapshot: "ledger.application:WalletSnapshot",
}
WALLET_EVENT_TOPICS: tuple[str, ...] = tuple(f"ledger.events:{name}" for name in EVENT_TYPES)


def stored_topic(cls: type) -> str:
    """The topic ``cls`` is stored under."""
    return STORED_TOPICS.get(cls) or get_topic(cls)


def register() -> None:
    """Let the library resolve every stored topic to its class (idempotent)."""
    for cls, topic in STORED_TOPICS.items():
        register_topic(topic, cls)
