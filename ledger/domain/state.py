"""The wallet's state: what applying its events has built, nothing else.

Plain data, changed only by the one fold, :mod:`ledger.domain.fold`. Summaries (:mod:`ledger.summaries`)
read it; decisions (:mod:`ledger.domain.wallet`) read it before raising events.
"""

from __future__ import annotations

from datetime import date
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from ledger.domain.money import Cents
from ledger.domain.rules import CostAssessment, SmeFigures

Account = Literal[
    "enterprise",
    "government",
    "provider",
    "held_own_share",
    "held_subsidy",
    "due_enterprise",
    "due_government",
    "recovered",
]
ACCOUNTS: tuple[str, ...] = get_args(Account)
AT_FINANCIAL_MANAGER = ("held_own_share", "held_subsidy", "due_enterprise", "due_government", "recovered")
ApplicationStateName = Literal[
    "submitted",
    "confirmed",
    "funded",
    "paying",
    "paid_out",
    "completed",
    "refused",
    "lapsed",
    "stopped",
    "closed",
]


def account_kind(account: str) -> str:
    """Account kind for totals: enterprise, government, provider, held, due, recovered."""
    if account.startswith("held_"):
        return "held"
    if account.startswith("due_"):
        return "due"
    return account


class Leg(BaseModel):
    """One side of a balanced money movement; positive means money arrives there."""

    model_config = ConfigDict(frozen=True)
    account: Account
    amount: Cents


class Deadlines(BaseModel):
    model_config = ConfigDict(frozen=True)
    submit_by: date
    answer_by: date
    deposit_by: date | None
    complete_by: date
    posting_grace_days: int = 0
    """Days after ``deposit_by`` a deposit that reached the account in time may
    still be posted (0 for applications submitted before the grace existed)."""


class PayoutOrder(BaseModel):
    order_id: str
    amount: Cents
    own_share_part: Cents
    subsidy_part: Cents
    """The order's amount split over the two shares, the subsidy pro rata (§3)."""
    ordered_on: date
    executed_on: date | None = None
    value_date: date | None = None
    """The business date the payout was executed on, and the bank's value date."""
    cancelled: bool = False


class Recovery(BaseModel):
    """A recovery (terugvordering) issued on a stop; the stop waits for its repayment."""

    debtor: Literal["enterprise", "provider"]
    amount: Cents
    own_share_part: Cents
    subsidy_part: Cents
    repaid: Cents = 0
    reason: str
    proof: str | None = None
    frees_paid_subsidy: bool = True
    """Whether the stop after repayment frees the subsidy paid out for the ceiling."""


class ApplicationState(BaseModel):
    """One subsidy application (steunaanvraag) as its events made it."""

    application_id: str
    sequence: int
    project_number: str
    payment_reference: str
    regime: str
    amendments: tuple[str, ...] = ()
    service: str
    provider: str
    themes: tuple[str, ...] = ()
    enrolled_on: date
    starts_on: date
    submitted_on: date
    year: int
    size: str
    rate: int
    costs: tuple[CostAssessment, ...] = ()
    eligible_cost: Cents
    non_eligible_cost: Cents
    subsidy: Cents
    own_share: Cents
    ceiling_keys: tuple[str, ...]
    deadlines: Deadlines
    retention_years: int
    payout_service_days: int
    confirmed_on: date | None = None
    completed_on: date | None = None
    final_state: str | None = None
    final_on: date | None = None
    final_reason: str | None = None
    balances: dict[str, Cents] = Field(default_factory=dict)
    """Money held for the application per account (``held_own_share``,
    ``held_subsidy``, ``due_enterprise``, ``due_government``)."""
    own_share_received: Cents = 0
    subsidy_received: Cents = 0
    """Deposits and top-ups received, less their reversals."""
    paid_own_share: Cents = 0
    paid_subsidy: Cents = 0
    """Executed payouts to the provider, by the share they came from."""
    ordered_total: Cents = 0
    ordered_subsidy: Cents = 0
    """Payout orders placed and not cancelled, executed or not (the subsidy part
    too: each later order's part is pro rata to this running total)."""
    orders: dict[str, PayoutOrder] = Field(default_factory=dict)
    refunded_own_share: Cents = 0
    returned_subsidy: Cents = 0
    """Own share refunded to the enterprise and subsidy returned to the government."""
    ceiling_claim: Cents = 0
    freed: Cents = 0
    """The subsidy still claimed against the year's ceiling, and what endings freed of it."""
    lost: Cents = 0
    """Reserved subsidy lost to its year by an ending in a later year."""
    latest_on: date | None = None
    """The latest business date among the application's events."""
    recovery: Recovery | None = None
    reversed_sequences: list[int] = Field(default_factory=list)

    @property
    def project_amount(self) -> int:
        return self.own_share + self.subsidy

    @property
    def paid_out(self) -> int:
        return self.paid_own_share + self.paid_subsidy

    def held(self, account: str) -> int:
        return self.balances.get(account, 0)

    @property
    def held_total(self) -> int:
        return self.held("held_own_share") + self.held("held_subsidy")

    @property
    def pending_orders(self) -> list[PayoutOrder]:
        return [o for o in self.orders.values() if o.executed_on is None and not o.cancelled]

    @property
    def pending_total(self) -> int:
        return sum(o.amount for o in self.pending_orders)

    @property
    def is_open(self) -> bool:
        return self.final_state is None

    @property
    def state(self) -> str:
        """See :func:`application_state_of`."""
        return application_state_of(
            final_state=self.final_state,
            completed=self.completed_on is not None,
            project_amount=self.project_amount,
            paid_out=self.paid_out,
            recovery_issued=self.recovery is not None,
            confirmed=self.confirmed_on is not None,
            funded=self.own_share_received == self.own_share and self.subsidy_received == self.subsidy,
        )


def application_state_of(
    *,
    final_state: str | None,
    completed: bool,
    project_amount: int,
    paid_out: int,
    recovery_issued: bool,
    confirmed: bool,
    funded: bool,
) -> str:
    """``submitted``, ``confirmed``, ``funded`` (own share and subsidy in), ``paying``
    (partly paid out or a recovery pending), ``paid_out``, ``completed``, or a final
    ``refused``, ``lapsed``, ``stopped``, ``closed``."""
    if final_state:
        return final_state
    if completed:
        return "completed"
    if project_amount and paid_out == project_amount:
        return "paid_out"
    if paid_out > 0 or recovery_issued:
        return "paying"
    if not confirmed:
        return "submitted"
    return "funded" if funded else "confirmed"


class YearCeiling(BaseModel):
    """A yearly ceiling (steunplafond) as fixed by the year's first application."""

    year: int
    key: str
    ceiling: Cents
    claimed: Cents = 0
    """Subsidy counted against the ceiling: reserved plus used plus lost."""
    used: Cents = 0
    """Subsidy paid out to providers."""
    freed: Cents = 0
    lost: Cents = 0
    """Subsidy of applications that ended in a later year: neither reserved nor freed."""

    @property
    def remaining(self) -> int:
        return self.ceiling - self.claimed

    @property
    def reserved(self) -> int:
        """Subsidy that can still be paid: claimed, not used, not lost."""
        return self.claimed - self.used - self.lost


class WalletState(BaseModel):
    enterprise_number: str
    name: str
    opened_on: date
    flemish_establishment: bool = True
    public_participation_percent: str = "0"
    contact_email: str | None = None
    """Where the enterprise's notices go (none: they are kept undeliverable)."""
    figures: SmeFigures
    figures_year: int
    figures_size: str
    sizes: dict[int, str] = Field(default_factory=dict)
    """Size fixed per calendar year at its first accepted application."""
    applications: dict[str, ApplicationState] = Field(default_factory=dict)
    ceilings: dict[str, YearCeiling] = Field(default_factory=dict)
    """Keyed ``"{year}/{ceiling key}"``."""
    last_hash: str = ""
    latest_business_date: date | None = None
    """The latest business date among the events applied (a snapshot with it on or
    before a date can start a replay as of that date)."""
    next_sequence: int = 1
    reversed_money_events: dict[int, str] = Field(default_factory=dict)
    money_events: dict[int, str] = Field(default_factory=dict)
    """Version of every money event that may be reversed -> its application id."""

    def ceiling(self, year: int, key: str) -> YearCeiling | None:
        return self.ceilings.get(f"{year}/{key}")
