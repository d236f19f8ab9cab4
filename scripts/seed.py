"""A large ledger made fast, for benchmarks: many wallets, each with application
lives, built through the domain's own decisions and saved many wallets per
transaction (so the events are exactly what commands would record)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain.clock import SystemClock, brussels_date
from ledger.domain.events import Actor
from ledger.domain.identifiers import payment_reference, wallet_id
from ledger.domain.wallet import Wallet

ACTOR = Actor(key_id="seed", role="back-office")
SME = {"fte": 10, "turnover": "1000000.00", "balance_total": "500000.00"}
LIFE_EVENTS = 6


def enterprise_number(n: int) -> str:
    """A valid enterprise number for every n below 9,000,000."""
    base = 1_000_000 + n
    return f"{base:08d}{97 - base % 97:02d}"


def seed(
    ledger: KmoLedger,
    events: int,
    lives_per_wallet: int = 4,
    wallets_per_transaction: int = 100,
    progress: Callable[[int], None] | None = None,
    first: int = 0,
) -> int:
    """Record about ``events`` events; returns how many were recorded."""
    now = SystemClock().now()
    today = brussels_date(now)
    submit = c.SubmitApplication(
        service="training",
        provider="DV.O207084",
        themes=("digitalisation",),
        enrolled_on=today,
        starts_on=today + timedelta(days=7),
        cost_lines=({"kind": "fee", "amount": "1000.00"},),
    )
    recorded, n, batch = 0, first, []
    while recorded < events:
        en = enterprise_number(n)
        n += 1
        wallet = Wallet.open(wallet_id(en), c.OpenWallet(enterprise_number=en, name=f"Seed {n}", sme=SME), ACTOR, now)
        for _ in range(lives_per_wallet):
            reference = payment_reference(f"{wallet.id}/{wallet.state.next_sequence}/{uuid.uuid4()}")
            application = wallet.submit(submit, reference, ACTOR, now)
            application_id = application.application_id
            wallet.confirm(application_id, c.ConfirmApplication(), ACTOR, now)
            wallet.deposit_own_share(
                application_id,
                c.DepositOwnShare(amount=application.own_share, payment_reference=reference, value_date=today),
                ACTOR,
                now,
            )
            wallet.top_up(application_id, c.TopUpSubsidy(amount=application.subsidy, value_date=today), ACTOR, now)
            order_id = wallet.order_payout(application_id, c.OrderPayout(amount=application.project_amount), ACTOR, now)
            wallet.execute_payout(application_id, c.ExecutePayout(order_id=order_id, value_date=today), ACTOR, now)
        recorded += len(wallet.pending_events)
        batch.append(wallet)
        if len(batch) >= wallets_per_transaction or recorded >= events:
            ledger.save(*batch)
            batch = []
            if progress:
                progress(recorded)
    return recorded
