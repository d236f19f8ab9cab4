"""The wallet's events: the audit contract.

Each event records results (regime, rate, capped subsidy, deadlines, balanced
money legs), so applying one never reads the clock or a rule table: a replay in
ten years gives the same wallet even after the rules changed.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict

from ledger.money import Cents
from ledger.rules import CostAssessment, SmeFigures
from ledger.state import (
    AT_FINANCIAL_MANAGER,
    ApplicationState,
    Deadlines,
    Leg,
    PayoutOrder,
    Recovery,
    WalletState,
    YearCeiling,
)

if TYPE_CHECKING:
    from ledger.wallet import Wallet

ENVELOPE = frozenset(
    {"originator_id", "originator_version", "timestamp", "business_date", "actor", "hash", "previous_hash"}
)


class Actor(BaseModel):
    """Who posted a command: the caller's key id and role, never the secret."""

    model_config = ConfigDict(frozen=True)
    key_id: str
    role: str


SYSTEM = Actor(key_id="system", role="system")


def chain_hash(content: dict[str, Any]) -> str:
    """SHA-256 over an event's canonical JSON content (sorted keys, its type and
    the previous event's hash included, its own hash left out)."""
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


class WalletEvent(BaseModel):
    """Base of every wallet event."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    money_event: ClassVar[bool] = False

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    business_date: date
    actor: Actor
    previous_hash: str
    hash: str = ""

    def canonical_content(self) -> dict[str, Any]:
        content = self.model_dump(mode="json", exclude={"hash"})
        content["type"] = type(self).__name__
        return content

    def sealed(self) -> WalletEvent:
        """This event with its chain hash filled in."""
        return self.model_copy(update={"hash": chain_hash(self.canonical_content())})

    def data(self) -> dict[str, Any]:
        """The event's own facts, without the envelope (JSON form)."""
        return self.model_dump(mode="json", exclude=ENVELOPE)

    def mutate(self, wallet: Wallet | None) -> Wallet:
        if wallet is None:
            raise ValueError(f"{type(self).__name__} cannot start a wallet")
        if self.originator_version != wallet.version + 1:
            raise ValueError(
                f"event version {self.originator_version} does not follow wallet version {wallet.version}"
            )
        self.apply(wallet.state)
        self.advance(wallet)
        return wallet

    def advance(self, wallet: Wallet) -> None:
        """Move the wallet's version, chain head and latest business date past this event."""
        wallet.version = self.originator_version
        state = wallet.state
        state.last_hash = self.hash
        if state.latest_business_date is None or self.business_date > state.latest_business_date:
            state.latest_business_date = self.business_date

    def apply(self, state: WalletState) -> None:
        """Change the state; never read a clock or a rule table here."""


class ApplicationEvent(WalletEvent):
    application_id: str

    def application(self, state: WalletState) -> ApplicationState:
        return state.applications[self.application_id]


class MoneyEvent(ApplicationEvent):
    """An event that moves money: balanced legs that sum to zero."""

    legs: tuple[Leg, ...] = ()

    def apply_legs(self, application: ApplicationState, sign: int = 1) -> None:
        for leg in self.legs:
            if leg.account in AT_FINANCIAL_MANAGER:
                application.balances[leg.account] = application.held(leg.account) + sign * leg.amount


def _free_ceiling(state: WalletState, application: ApplicationState, amount: int) -> None:
    if amount <= 0:
        return
    application.ceiling_claim -= amount
    application.freed += amount
    for key in application.ceiling_keys:
        ceiling = state.ceilings[f"{application.year}/{key}"]
        ceiling.claimed -= amount
        ceiling.freed += amount


def _use_ceiling(state: WalletState, application: ApplicationState, subsidy_part: int) -> None:
    for key in application.ceiling_keys:
        state.ceilings[f"{application.year}/{key}"].used += subsidy_part


def _cancel_orders(application: ApplicationState, order_ids: tuple[str, ...]) -> None:
    for order_id in order_ids:
        order = application.orders[order_id]
        order.cancelled = True
        application.ordered_total -= order.amount
        application.ordered_subsidy -= order.subsidy_part


class WalletOpened(WalletEvent):
    """A wallet opened for an enterprise that passed the SME test."""

    enterprise_number: str
    name: str
    figures: SmeFigures
    figures_year: int
    size: Literal["small", "medium"]
    flemish_establishment: bool
    public_participation_percent: str

    def mutate(self, wallet: Wallet | None) -> Wallet:
        from ledger.wallet import Wallet

        if wallet is not None:
            raise ValueError("a wallet is opened only once")
        state = WalletState(
            enterprise_number=self.enterprise_number,
            name=self.name,
            opened_on=self.business_date,
            flemish_establishment=self.flemish_establishment,
            public_participation_percent=self.public_participation_percent,
            figures=self.figures,
            figures_year=self.figures_year,
            figures_size=self.size,
            last_hash=self.hash,
            latest_business_date=self.business_date,
        )
        return Wallet(self.originator_id, self.originator_version, state)


class SmeFiguresFiled(WalletEvent):
    year: int
    figures: SmeFigures
    size: Literal["small", "medium", "large"]

    def apply(self, state: WalletState) -> None:
        state.figures, state.figures_year, state.figures_size = self.figures, self.year, self.size


class CeilingFigure(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str
    ceiling: Cents
    remaining_before: Cents


class ApplicationSubmitted(ApplicationEvent):
    sequence: int
    project_number: str
    payment_reference: str
    regime: str
    amendments: tuple[str, ...]
    service: str
    provider: str
    themes: tuple[str, ...]
    enrolled_on: date
    starts_on: date
    hours: str | None = None
    participants: int | None = None
    year: int
    size: Literal["small", "medium"]
    rate: int
    """Basis points: 3000 is 30 %."""
    costs: tuple[CostAssessment, ...]
    eligible_cost: Cents
    non_eligible_cost: Cents
    rate_amount: Cents
    subsidy: Cents
    capped_by: str | None
    own_share: Cents
    ceilings: tuple[CeilingFigure, ...]
    deadlines: Deadlines
    retention_years: int
    payout_service_days: int

    def apply(self, state: WalletState) -> None:
        state.sizes.setdefault(self.year, self.size)
        state.next_sequence = self.sequence + 1
        for figure in self.ceilings:
            slot = f"{self.year}/{figure.key}"
            if slot not in state.ceilings:
                state.ceilings[slot] = YearCeiling(year=self.year, key=figure.key, ceiling=figure.ceiling)
            state.ceilings[slot].claimed += self.subsidy
        state.applications[self.application_id] = ApplicationState(
            application_id=self.application_id,
            sequence=self.sequence,
            project_number=self.project_number,
            payment_reference=self.payment_reference,
            regime=self.regime,
            amendments=self.amendments,
            service=self.service,
            provider=self.provider,
            themes=self.themes,
            enrolled_on=self.enrolled_on,
            starts_on=self.starts_on,
            submitted_on=self.business_date,
            year=self.year,
            size=self.size,
            rate=self.rate,
            costs=self.costs,
            eligible_cost=self.eligible_cost,
            non_eligible_cost=self.non_eligible_cost,
            subsidy=self.subsidy,
            own_share=self.own_share,
            ceiling_keys=tuple(f.key for f in self.ceilings),
            deadlines=self.deadlines,
            retention_years=self.retention_years,
            payout_service_days=self.payout_service_days,
            ceiling_claim=self.subsidy,
        )


class ApplicationConfirmed(ApplicationEvent):
    deposit_by: date | None = None

    def apply(self, state: WalletState) -> None:
        application = self.application(state)
        application.confirmed_on = self.business_date
        if self.deposit_by is not None:
            application.deadlines = application.deadlines.model_copy(update={"deposit_by": self.deposit_by})


class Ending(MoneyEvent):
    """An event that ends an application: held money falls due, the ceiling may be freed."""

    final_state: ClassVar[str]
    ceiling_freed: Cents = 0
    ceiling_used_returned: Cents = 0
    """Subsidy paid out and recovered: freed, it no longer counts as used either."""
    cancelled_orders: tuple[str, ...] = ()

    def end(self, state: WalletState, reason: str | None) -> None:
        application = self.application(state)
        self.apply_legs(application)
        _cancel_orders(application, self.cancelled_orders)
        _free_ceiling(state, application, self.ceiling_freed)
        _use_ceiling(state, application, -self.ceiling_used_returned)
        application.final_state = self.final_state
        application.final_on = self.business_date
        application.final_reason = reason


class ApplicationRefused(Ending):
    final_state: ClassVar[str] = "refused"
    reason: str

    def apply(self, state: WalletState) -> None:
        self.end(state, self.reason)


class ApplicationLapsed(Ending):
    """A deadline passed: the rule and the deadline say why."""

    final_state: ClassVar[str] = "lapsed"
    rule: str
    deadline: date

    def apply(self, state: WalletState) -> None:
        self.end(state, self.rule)


class ProjectClosed(Ending):
    """The completion date passed with money still held: it goes back."""

    final_state: ClassVar[str] = "closed"
    rule: str
    deadline: date

    def apply(self, state: WalletState) -> None:
        self.end(state, self.rule)


class ProjectStopped(Ending):
    """A stop (stopzetting): remaining own share to the enterprise, unspent subsidy back."""

    final_state: ClassVar[str] = "stopped"
    reason: str
    proof: str | None = None

    def apply(self, state: WalletState) -> None:
        self.end(state, self.reason)


class Receipt(MoneyEvent):
    """Money that reached or left the financial manager's account, with the bank's date."""

    money_event: ClassVar[bool] = True
    amount: Cents
    value_date: date

    def apply(self, state: WalletState) -> None:
        application = self.application(state)
        self.apply_legs(application)
        self.count(application, state, 1)
        state.money_events[self.originator_version] = self.application_id

    def count(self, application: ApplicationState, state: WalletState, sign: int) -> None:
        """Update the application's counters (``sign`` -1 undoes them on a reversal)."""


class OwnShareDeposited(Receipt):
    """Own share (eigen bijdrage) received with its structured payment reference."""

    payment_reference: str

    def count(self, application: ApplicationState, state: WalletState, sign: int) -> None:
        application.own_share_received += sign * self.amount


class SubsidyToppedUp(Receipt):
    def count(self, application: ApplicationState, state: WalletState, sign: int) -> None:
        application.subsidy_received += sign * self.amount


class PayoutOrdered(ApplicationEvent):
    order_id: str
    amount: Cents
    own_share_part: Cents
    subsidy_part: Cents

    def apply(self, state: WalletState) -> None:
        application = self.application(state)
        application.orders[self.order_id] = PayoutOrder(
            order_id=self.order_id,
            amount=self.amount,
            own_share_part=self.own_share_part,
            subsidy_part=self.subsidy_part,
            ordered_on=self.business_date,
        )
        application.ordered_total += self.amount
        application.ordered_subsidy += self.subsidy_part


class PayoutExecuted(Receipt):
    order_id: str
    own_share_part: Cents
    subsidy_part: Cents

    def count(self, application: ApplicationState, state: WalletState, sign: int) -> None:
        order = application.orders[self.order_id]
        order.executed_on = self.business_date if sign > 0 else None
        order.value_date = self.value_date if sign > 0 else None
        application.paid_own_share += sign * self.own_share_part
        application.paid_subsidy += sign * self.subsidy_part
        _use_ceiling(state, application, sign * self.subsidy_part)


class RecoveryIssued(ApplicationEvent):
    """A recovery (terugvordering) of money already paid out."""

    debtor: Literal["enterprise", "provider"]
    amount: Cents
    own_share_part: Cents
    subsidy_part: Cents
    reason: str
    proof: str | None = None
    frees_paid_subsidy: bool
    cancelled_orders: tuple[str, ...] = ()

    def apply(self, state: WalletState) -> None:
        application = self.application(state)
        _cancel_orders(application, self.cancelled_orders)
        application.recovery = Recovery(
            debtor=self.debtor,
            amount=self.amount,
            own_share_part=self.own_share_part,
            subsidy_part=self.subsidy_part,
            reason=self.reason,
            proof=self.proof,
            frees_paid_subsidy=self.frees_paid_subsidy,
        )


class RecoveryRepaid(Receipt):
    def count(self, application: ApplicationState, state: WalletState, sign: int) -> None:
        if application.recovery is not None:
            application.recovery.repaid += sign * self.amount


class RefundExecuted(Receipt):
    """The financial manager paid out money that was due back."""

    kind: Literal["own_share_to_enterprise", "subsidy_to_government"]

    def count(self, application: ApplicationState, state: WalletState, sign: int) -> None:
        if self.kind == "own_share_to_enterprise":
            application.refunded_own_share += sign * self.amount
        else:
            application.returned_subsidy += sign * self.amount


class ServiceCompleted(ApplicationEvent):
    """The service was finished (training certificate, vormingsattest)."""

    completed_on: date

    def apply(self, state: WalletState) -> None:
        self.application(state).completed_on = self.completed_on


class EventReversed(MoneyEvent):
    """Undoes a mis-posted money event's legs and effects; the original stays."""

    reversed_sequence: int
    reversed_type: str
    reversed_event: dict[str, Any]
    reason: str

    def apply(self, state: WalletState) -> None:
        application = self.application(state)
        self.apply_legs(application)
        original = RECEIPTS[self.reversed_type].model_validate(self.reversed_event)
        original.count(application, state, -1)
        application.reversed_sequences.append(self.reversed_sequence)
        state.reversed_money_events[self.reversed_sequence] = self.reason


RECEIPTS: dict[str, type[Receipt]] = {
    cls.__name__: cls
    for cls in (OwnShareDeposited, SubsidyToppedUp, PayoutExecuted, RecoveryRepaid, RefundExecuted)
}
EVENT_TYPES: dict[str, type[WalletEvent]] = {
    cls.__name__: cls
    for cls in (
        WalletOpened,
        SmeFiguresFiled,
        ApplicationSubmitted,
        ApplicationConfirmed,
        ApplicationRefused,
        OwnShareDeposited,
        SubsidyToppedUp,
        PayoutOrdered,
        PayoutExecuted,
        ProjectStopped,
        RecoveryIssued,
        RecoveryRepaid,
        RefundExecuted,
        ApplicationLapsed,
        ProjectClosed,
        ServiceCompleted,
        EventReversed,
    )
}
