"""Snapshots: a wallet's state at a version, so a long wallet loads as fast as a short one."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from ledger.domain.clock import SystemClock
from ledger.domain.state import WalletState
from ledger.domain.wallet import Wallet

WALLET_TOPIC = "ledger.wallet:Wallet"
"""What a snapshot names as its aggregate's class (the library's field; the wallet is rebuilt by :meth:`mutate`)."""


class WalletSnapshot(BaseModel):
    """A wallet's state at a version."""

    model_config = ConfigDict(frozen=True)
    originator_id: UUID
    originator_version: int
    timestamp: datetime
    topic: str
    state: dict[str, Any]

    @classmethod
    def take(cls, wallet: Wallet) -> WalletSnapshot:
        return cls(
            originator_id=wallet.id,
            originator_version=wallet.version,
            timestamp=SystemClock().now(),
            topic=WALLET_TOPIC,
            state=wallet.state.model_dump(mode="json"),
        )

    def mutate(self, _: None) -> Wallet:
        return Wallet(self.originator_id, self.originator_version, WalletState.model_validate(self.state))
