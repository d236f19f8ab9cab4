"""The wallet's events: the audit contract.

Each event records results (regime, rate, capped subsidy, deadlines, balanced
money legs), so applying one never reads the clock or a rule table: a replay in
ten years gives the same wallet even after the rules changed.

Events are plain data: they know nothing of the wallet aggregate or its state.
One function, :func:`ledger.domain.fold.apply_event`, folds them into state.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from ledger.domain.money import Cents
from ledger.domain.regimes import Size
from ledger.domain.rules import CostAssessment, SmeFigures
from ledger.domain.state import Deadlines, Leg

ENVELOPE: set[str] = set(
    {"originator_id", "originator_version", "timestamp", "business_date", "actor", "hash", "previous_hash"}
)


class Actor(BaseModel):
    """Who posted a command: the caller's key id and role, never the secret, and
    the name the keys file gives that key (a service or a person), if any.

    An actor without a name is written without the field, as every event was
    before keys had names: their chain hashes (over this JSON) stay as recorded."""

    model_config = ConfigDict(frozen=True)
    key_id: str
    role: str
    name: str | None = None

    @model_serializer(mode="wrap")
    def _name_only_when_given(self, write: SerializerFunctionWrapHandler) -> dict[str, Any]:
        content: dict[str, Any] = write(self)
        if self.name is None:
            content.pop("name", None)
        return content


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


class ApplicationEvent(WalletEvent):
    application_id: str


class MoneyEvent(ApplicationEvent):
    """An event that moves money: balanced legs that sum to zero."""

    legs: tuple[Leg, ...] = ()


class WalletOpened(WalletEvent):
    """A wallet opened for an enterprise that passed the SME test."""

    enterprise_number: str
    name: str
    figures: SmeFigures
    figures_year: int
    size: Size
    flemish_establishment: bool
    public_participation_percent: str
    contact_email: str | None = None
    """Where the enterprise's notices go. A wallet opened without one is written
    without the field, as every wallet was before contacts: their chain hashes
    (over this JSON) stay as recorded."""

    @model_serializer(mode="wrap")
    def _contact_only_when_given(self, write: SerializerFunctionWrapHandler) -> dict[str, Any]:
        content: dict[str, Any] = write(self)
        if self.contact_email is None:
            content.pop("contact_email", None)
        return content


class ContactEmailChanged(WalletEvent):
    """The enterprise's contact e-mail address changed (None: removed)."""

    contact_email: str | None


class SmeFiguresFiled(WalletEvent):
    year: int
    figures: SmeFigures
    size: Literal["small", "medium", "large"]


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
    size: Size
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


class ApplicationConfirmed(ApplicationEvent):
    deposit_by: date | None = None


class Ending(MoneyEvent):
    """An event that ends an application: held money falls due, the ceiling may be
    freed (in the application's year) or lost to it (later)."""

    final_state: ClassVar[str]
    ceiling_freed: Cents = 0
    ceiling_used_returned: Cents = 0
    """Subsidy paid out and recovered: freed, it no longer counts as used either."""
    ceiling_lost: Cents = 0
    """Reserved subsidy lost to its year: the ending fell in a later year."""
    cancelled_orders: tuple[str, ...] = ()


class ApplicationRefused(Ending):
    final_state: ClassVar[str] = "refused"
    reason: str


class ApplicationLapsed(Ending):
    """A deadline passed: the rule and the deadline say why."""

    final_state: ClassVar[str] = "lapsed"
    rule: str
    deadline: date


class ProjectClosed(Ending):
    """The completion date passed with money still held and not ordered: it goes
    back; orders placed in time may still be executed."""

    final_state: ClassVar[str] = "closed"
    rule: str
    deadline: date


class ProjectStopped(Ending):
    """A stop (stopzetting): remaining own share to the enterprise, unspent subsidy back."""

    final_state: ClassVar[str] = "stopped"
    reason: str
    proof: str | None = None


class BankMovement(MoneyEvent):
    """Money that reached or left the financial manager's account, with the bank's date."""

    money_event: ClassVar[bool] = True
    amount: Cents
    value_date: date


class OwnShareDeposited(BankMovement):
    """Own share (eigen bijdrage) received with its structured payment reference."""

    payment_reference: str


class SubsidyToppedUp(BankMovement):
    """The government's subsidy received."""


class PayoutOrdered(ApplicationEvent):
    order_id: str
    amount: Cents
    own_share_part: Cents
    subsidy_part: Cents


class PayoutExecuted(BankMovement):
    order_id: str
    own_share_part: Cents
    subsidy_part: Cents


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


class RecoveryRepaid(BankMovement):
    """A recovery repaid, in part or in full."""


class RefundExecuted(BankMovement):
    """The financial manager paid out money that was due back."""

    kind: Literal["own_share_to_enterprise", "subsidy_to_government"]


class ServiceCompleted(ApplicationEvent):
    """The service was finished (training certificate, vormingsattest)."""

    completed_on: date


class EventReversed(MoneyEvent):
    """Undoes a mis-posted money event's legs and effects; the original stays."""

    reversed_sequence: int
    reversed_type: str
    reversed_event: dict[str, Any]
    reason: str


BANK_MOVEMENTS: dict[str, type[BankMovement]] = {
    cls.__name__: cls for cls in (OwnShareDeposited, SubsidyToppedUp, PayoutExecuted, RecoveryRepaid, RefundExecuted)
}
ENDINGS: dict[str, str] = {
    cls.__name__: cls.final_state for cls in (ApplicationRefused, ApplicationLapsed, ProjectClosed, ProjectStopped)
}
"""How an application ends: the event type and the final state it leaves."""
EVENT_TYPES: dict[str, type[WalletEvent]] = {
    cls.__name__: cls
    for cls in (
        WalletOpened,
        SmeFiguresFiled,
        ContactEmailChanged,
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
