"""Snapshots: a wallet's state at a version, so a long wallet loads as fast as a short one.

A snapshot is a copy of what the events made, and a copy is trusted only once
checked. It carries a digest (SHA-256 over its canonical content) sealed when
it is taken, and its state names the chain head it was taken at
(``last_hash``). Loading a wallet (``KmoLedger``) uses a snapshot only when
:func:`snapshot_problem` finds nothing, i.e. its digest matches its content and
the stored event at its version has the hash it names; otherwise the wallet is
folded from its events. ``kmo-ledger verify`` goes further and compares every
snapshot with a fresh fold of the events up to its version
(:mod:`ledger.audit.ledger_verification`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict

from ledger.domain.clock import SystemClock
from ledger.domain.state import WalletState
from ledger.domain.wallet import Wallet
from ledger.storage.log import is_postgres

WALLET_TOPIC = "ledger.wallet:Wallet"
"""What a snapshot names as its aggregate's class (the library's field; the wallet is rebuilt by :meth:`mutate`)."""


def snapshot_digest(originator_id: UUID | str, version: int, topic: str, state: dict[str, Any]) -> str:
    """SHA-256 over a snapshot's canonical JSON content: its wallet, version,
    topic and state (sorted keys). The timestamp is left out: nothing reads it."""
    content = {"originator_id": str(originator_id), "originator_version": version, "topic": topic, "state": state}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def snapshot_problem(
    originator_id: UUID | str, version: int, stored: dict[str, Any], event_hash: str | None
) -> str | None:
    """Why the snapshot stored as ``stored`` (its JSON, decoded) at ``version``
    cannot be used, or None: it must carry a digest that matches its content,
    and ``event_hash``, the hash of the stored event at its version, must be the
    chain head its state names. A snapshot taken before snapshots carried a
    digest is not used either: a missing digest cannot be told from a removed one."""
    state = stored.get("state")
    digest = stored.get("digest")
    if not isinstance(state, dict):
        return "it holds no wallet state"
    if digest is None:
        return "it was taken before snapshots carried a digest"
    if digest != snapshot_digest(originator_id, version, str(stored.get("topic")), state):
        return "its digest does not match its content: it was changed"
    if event_hash is None:
        return f"event {version}, the event it was taken at, is not stored"
    if state.get("last_hash") != event_hash:
        return f"event {version} does not have the hash the snapshot names: one of them was changed"
    return None


class WalletSnapshot(BaseModel):
    """A wallet's state at a version, sealed with its digest."""

    model_config = ConfigDict(frozen=True)
    originator_id: UUID
    originator_version: int
    timestamp: datetime
    topic: str
    state: dict[str, Any]
    digest: str | None = None
    """:func:`snapshot_digest` of the snapshot when it was taken (None: taken before snapshots carried one)."""

    @classmethod
    def take(cls, wallet: Wallet) -> WalletSnapshot:
        state = wallet.state.model_dump(mode="json")
        return cls(
            originator_id=wallet.id,
            originator_version=wallet.version,
            timestamp=SystemClock().now(),
            topic=WALLET_TOPIC,
            state=state,
            digest=snapshot_digest(wallet.id, wallet.version, WALLET_TOPIC, state),
        )

    def problem(self, event_hash: str | None) -> str | None:
        """:func:`snapshot_problem` of this snapshot."""
        stored = {"topic": self.topic, "state": self.state, "digest": self.digest}
        return snapshot_problem(self.originator_id, self.originator_version, stored, event_hash)

    def mutate(self, _: None) -> Wallet:
        return Wallet(self.originator_id, self.originator_version, WalletState.model_validate(self.state))


def snapshotted(recorder: Any) -> set[UUID] | None:
    """Every wallet with a stored snapshot, in one query (``recorder``: the
    snapshot store's); None for a store without a table to ask (in memory)."""
    table = getattr(recorder, "events_table_name", None)
    if table is None:
        return None
    if is_postgres(recorder):
        from psycopg.sql import SQL, Identifier

        statement = SQL("SELECT DISTINCT originator_id FROM {}.{}").format(
            Identifier(recorder.datastore.schema), Identifier(table)
        )
        with recorder.datastore.get_connection() as connection:
            return {UUID(str(row["originator_id"])) for row in connection.execute(statement).fetchall()}
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(f"SELECT DISTINCT originator_id FROM {table}")
        return {UUID(row[0]) for row in cursor.fetchall()}
