"""Request and response schemas of the HTTP API.

Requests are separate from the ledger's commands: each request schema checks
the wire form (money as a euro string or number with at most two decimals,
dates as ``YYYY-MM-DD``) and turns itself into one command with ``command()``.
Responses mirror :mod:`ledger.summaries` (money as two-decimal strings).

The document generated clients are built from says what the server takes and
answers, no looser: money in as a string (a JSON number is accepted too, as
API.md says, but a client should not be led to send a float), every closed set
of the domain as an enum, and a request field with a default as optional.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_serializer

from api.settings import Role
from ledger.domain import commands as c
from ledger.domain.clock import EARLIEST, LATEST
from ledger.domain.errors import ValidationFailed
from ledger.domain.events import EVENT_TYPES, SYSTEM
from ledger.domain.lifecycle import DeadlineRule, StopReason
from ledger.domain.money import format_euro, parse_euro
from ledger.domain.regimes import AMENDMENTS, REGIMES, THEMES, Service, Size
from ledger.domain.rules import CostKind, CostLine, Holding, SmeFigures
from ledger.domain.state import ACCOUNTS, Account, ApplicationStateName, account_kind
from ledger.domain.text import Identifier, Line, Prose

# --------------------------------------------------------------------------- wire types

MAX_CENTS = 1_000_000_000_000_00
"""The largest amount accepted on input: one trillion euro."""
Day = date
"""``date`` under another name, for fields that are themselves called ``date``."""
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


_EURO_TEXT = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?", re.ASCII)
"""A euro amount as a JSON string: ASCII digits, then optionally a point and one or two decimals."""
_EURO_TOO_PRECISE = re.compile(r"[0-9]+\.[0-9]{3,}", re.ASCII)
EURO_SPELLING = 'a euro amount is a JSON string of digits with at most two decimals ("2500.00") or a JSON number'


def _misspelt_euro(text: str) -> str:
    if len(text) <= 40 and _EURO_TOO_PRECISE.fullmatch(text):
        return "at most two decimals (cents) are allowed"
    if text.startswith("-"):
        return "a negative amount is not allowed"
    return EURO_SPELLING


def _euro_in(value: Any) -> int:
    """Money on input, exactly as API.md has it: a string of ASCII digits with an
    optional point and one or two decimals (no sign, exponent, underscore or
    space), or a finite JSON number, not negative, with at most two decimals."""
    if isinstance(value, str):
        if len(value) > 40 or not _EURO_TEXT.fullmatch(value):
            raise ValueError(_misspelt_euro(value))
    elif isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(EURO_SPELLING)
    try:
        cents = parse_euro(value)
    except ValidationFailed as error:
        raise ValueError(error.detail.split(": ", 1)[-1]) from None
    except ArithmeticError:
        raise ValueError("not a euro amount") from None
    if cents > MAX_CENTS:
        raise ValueError(f"at most {format_euro(MAX_CENTS)} euro")
    return cents


EuroIn = Annotated[
    int,
    BeforeValidator(_euro_in),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^[0-9]{1,12}(\.[0-9]{1,2})?$",
            "description": 'Euro as a string of digits with at most two decimals ("2500.00"); '
            "the server also takes a JSON number, but a float cannot hold every cent",
            "examples": ["2500.00"],
        }
    ),
]
"""Money on input: a JSON string (or number) of euro, into cents. The document
says string only: a generated client then takes ``str(Decimal(...))`` and never
sends ``0.30000000000000004``."""

Euro = Annotated[str, Field(pattern=r"^-?\d+\.\d{2}$", examples=["2500.00"])]
"""Money on output: a string of euro with two decimals."""


def _iso_date_text(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("a date is written YYYY-MM-DD")
    return value


def _supported_date(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"a date between {EARLIEST} and {LATEST} is expected")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text), AfterValidator(_supported_date)]
"""A Brussels business date, ``YYYY-MM-DD``."""

Count = Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=10, decimal_places=2, allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2, allow_inf_nan=False)]
Reason = Annotated[Prose, Field(min_length=1, max_length=500)]
Theme = Literal[THEMES]  # type: ignore[valid-type]

# The closed sets answers are drawn from, each taken from the domain's own list.
ActorRole = Literal[(*get_args(Role), SYSTEM.role)]  # type: ignore[valid-type]
"""A key's role, or ``system`` for the command line's deadline run."""
EventType = Literal[tuple(EVENT_TYPES)]  # type: ignore[valid-type]
RegimeName = Literal[tuple(regime.name for regime in REGIMES)]  # type: ignore[valid-type]
AmendmentName = Literal[tuple(amendment.name for amendment in AMENDMENTS)]  # type: ignore[valid-type]
AccountKind = Literal[tuple(dict.fromkeys(account_kind(account) for account in ACCOUNTS))]  # type: ignore[valid-type]


def _defaults_in_words(schema: dict[str, Any]) -> None:
    """A request field with a default is optional: it is not ``required``, and its
    default is said in its description instead of as ``default`` (openapi-typescript
    types a property that has a ``default`` as one the client must send)."""
    for field in schema.get("properties", {}).values():
        if "default" in field:
            default = field.pop("default")
            said = "Optional." if default is None else f"Optional; default {json.dumps(default)}."
            field["description"] = f"{field['description'].rstrip('.')}. {said}" if "description" in field else said


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_defaults_in_words)


def example(**fields: Any) -> ConfigDict:
    """The example a request body shows in the OpenAPI document (each has one)."""

    def document(schema: dict[str, Any]) -> None:
        _defaults_in_words(schema)
        schema["examples"] = [fields]

    return ConfigDict(json_schema_extra=document)


class CommandIn(RequestBody):
    """A request body that is one ledger command: a flat one is the command
    ``command_type`` field for field; one with nested figures says how it is built."""

    command_type: ClassVar[type[c.Command]]

    def command(self) -> c.Command:
        return self.command_type(**dict(self))


# --------------------------------------------------------------------------- requests


class HoldingIn(RequestBody):
    """A partner (25 to 50 %) or linked (over 50 %) enterprise."""

    share_percent: Percent
    fte: Count
    turnover: EuroIn
    balance_total: EuroIn

    def figures(self) -> Holding:
        return Holding(**self.model_dump())


class SmeFiguresIn(RequestBody):
    """Figures of the last closed financial year."""

    fte: Count
    turnover: EuroIn
    balance_total: EuroIn
    partners: list[HoldingIn] = Field(default=[], max_length=100)
    linked: list[HoldingIn] = Field(default=[], max_length=100)

    def figures(self) -> SmeFigures:
        return SmeFigures(
            fte=self.fte,
            turnover=self.turnover,
            balance_total=self.balance_total,
            partners=tuple(p.figures() for p in self.partners),
            linked=tuple(p.figures() for p in self.linked),
        )


SME_EXAMPLE = {"fte": 12, "turnover": "1800000.00", "balance_total": "900000.00", "partners": [], "linked": []}


class OpenWalletIn(CommandIn):
    model_config = example(enterprise_number="BE 0403.170.701", name="Bakkerij Peeters", sme=SME_EXAMPLE)
    enterprise_number: Identifier = Field(max_length=32, description="Any common spelling; answered as 0403170701")
    name: Line = Field(min_length=1, max_length=200)
    sme: SmeFiguresIn
    flemish_establishment: bool = True
    public_participation_percent: Percent = Decimal(0)
    contact_email: c.EmailAddress | None = Field(
        default=None, description="Where the enterprise's notices go (payment instructions, reminders, ...)"
    )

    def command(self) -> c.OpenWallet:
        return c.OpenWallet(**dict(self) | {"sme": self.sme.figures()})


class FileSmeFiguresIn(CommandIn):
    model_config = example(year=2025, sme=SME_EXAMPLE)
    year: int = Field(ge=EARLIEST.year, le=LATEST.year, description="The financial year the figures close")
    sme: SmeFiguresIn

    def command(self) -> c.FileSmeFigures:
        return c.FileSmeFigures(**dict(self) | {"sme": self.sme.figures()})


class ContactIn(CommandIn):
    model_config = example(contact_email="boekhouding@bakkerij-peeters.be")
    command_type = c.ChangeContactEmail
    contact_email: c.EmailAddress | None = Field(description="The new address; null removes it")


class CostLineIn(RequestBody):
    kind: CostKind
    amount: EuroIn
    participants: int | None = Field(default=None, ge=1, le=100_000, description="catering only")
    days: int | None = Field(default=None, ge=1, le=1000, description="catering only")


class SubmitApplicationIn(CommandIn):
    model_config = example(
        service="training",
        provider="DV.O207084",
        themes=["digitalisation"],
        enrolled_on="2026-02-24",
        starts_on="2026-03-16",
        cost_lines=[{"kind": "fee", "amount": "10000.00"}, {"kind": "vat", "amount": "2100.00"}],
    )
    service: Service
    provider: Identifier = Field(max_length=32, examples=["DV.O207084"])
    themes: list[Theme] = Field(default=[], max_length=len(THEMES))
    enrolled_on: IsoDate
    starts_on: IsoDate
    cost_lines: list[CostLineIn] = Field(min_length=1, max_length=100)
    hours: Count | None = Field(default=None, gt=0, description="training in the pillars regime from 2013")
    participants: int | None = Field(default=None, ge=1, le=100_000)

    def command(self) -> c.SubmitApplication:
        cost_lines = tuple(CostLine(**line.model_dump()) for line in self.cost_lines)
        return c.SubmitApplication(**dict(self) | {"themes": tuple(self.themes), "cost_lines": cost_lines})


class RefusalIn(CommandIn):
    model_config = example(reason="related parties")
    command_type = c.RefuseApplication
    reason: Reason


class DepositIn(CommandIn):
    model_config = example(amount="7000.00", payment_reference="+++090/9337/55493+++", value_date="2026-03-05")
    command_type = c.DepositOwnShare
    amount: EuroIn
    payment_reference: Identifier = Field(max_length=40)
    value_date: IsoDate


class BankMovementIn(CommandIn):
    """Money that moved at the bank: how much, and the bank's value date."""

    amount: EuroIn
    value_date: IsoDate


class TopUpIn(BankMovementIn):
    model_config = example(amount="3000.00", value_date="2026-03-06")
    command_type = c.TopUpSubsidy


class PayoutOrderIn(CommandIn):
    model_config = example(amount="4000.00")
    command_type = c.OrderPayout
    amount: EuroIn


class PayoutIn(CommandIn):
    model_config = example(order_id="1f0e5bd2-8d4c-5f0a-9b1e-0c2d3e4f5a6b", value_date="2026-04-01")
    command_type = c.ExecutePayout
    order_id: Identifier = Field(max_length=64)
    value_date: IsoDate


class StopIn(CommandIn):
    model_config = example(reason="on_request")
    command_type = c.StopProject
    reason: StopReason
    proof: Line | None = Field(default=None, max_length=500, description="the proof document's reference")


class RepaymentIn(BankMovementIn):
    model_config = example(amount="1200.00", value_date="2026-05-04")
    command_type = c.RepayRecovery


class RefundIn(CommandIn):
    model_config = example(kind="own_share_to_enterprise", amount="7000.00", value_date="2026-05-04")
    command_type = c.ExecuteRefund
    kind: c.RefundKind
    amount: EuroIn
    value_date: IsoDate


class ReversalIn(CommandIn):
    model_config = example(sequence=4, reason="posted on the wrong wallet")
    command_type = c.ReverseEvent
    sequence: int = Field(ge=1, le=2**31 - 1, description="the `sequence` of the money event to reverse")
    reason: Reason


class CompletionIn(CommandIn):
    model_config = example(completed_on="2026-06-30")
    command_type = c.CompleteService
    completed_on: IsoDate


# --------------------------------------------------------------------------- responses


class ResponseBody(BaseModel):
    model_config = ConfigDict(frozen=True)


class HeldOut(ResponseBody):
    own_share: Euro
    subsidy: Euro


class DueOut(ResponseBody):
    enterprise: Euro
    government: Euro


class CeilingOut(ResponseBody):
    year: int
    key: str
    ceiling: Euro
    reserved: Euro
    used: Euro
    freed: Euro
    lost: Euro = Field(
        description="Subsidy of applications that ended in a later year: lost to this year's "
        "ceiling, neither reserved nor freed"
    )
    remaining: Euro


class ApplicationSummaryOut(ResponseBody):
    application_id: str
    project_number: str
    state: ApplicationStateName
    service: Service
    provider: str
    subsidy: Euro
    own_share: Euro
    submitted_on: date


class WalletOut(ResponseBody):
    """A wallet: sizes per year, money held, ceilings, its applications, its version."""

    enterprise_number: str = Field(examples=["0403170701"])
    name: str
    contact_email: str | None = Field(description="Where the enterprise's notices go (null: nowhere yet)")
    opened_on: date
    sizes: dict[str, Size] = Field(examples=[{"2026": "small"}])
    held: HeldOut
    due: DueOut
    ceilings: list[CeilingOut]
    applications: list[ApplicationSummaryOut]
    version: int = Field(description="The wallet's version, also its ETag")


class ReplayOut(WalletOut):
    as_of: date


class CostLineOut(ResponseBody):
    kind: CostKind
    amount: Euro
    eligible: Euro
    non_eligible: Euro
    note: str


class PaidOutOut(ResponseBody):
    own_share: Euro
    subsidy: Euro
    total: Euro


class RefundedOut(ResponseBody):
    own_share_to_enterprise: Euro
    subsidy_to_government: Euro


class RecoveryOut(ResponseBody):
    debtor: Literal["enterprise", "provider"]
    amount: Euro
    repaid: Euro
    outstanding: Euro
    reason: str


class DeadlinesOut(ResponseBody):
    submit_by: date
    answer_by: date
    deposit_by: date | None
    deposit_posted_by: date | None = Field(
        description="The last day a deposit whose value date is on or before deposit_by may be posted "
        "(the posting grace)"
    )
    complete_by: date


class NextDeadlineOut(ResponseBody):
    rule: DeadlineRule
    date: Day


class PayoutOrderOut(ResponseBody):
    order_id: str
    amount: Euro
    own_share_part: Euro
    subsidy_part: Euro
    ordered_on: date
    executed_on: date | None
    value_date: date | None
    state: Literal["ordered", "executed", "cancelled"]


class ApplicationOut(ResponseBody):
    """One application: its decision, money held and paid, and its deadlines."""

    application_id: str
    project_number: str
    payment_reference: str = Field(examples=["+++090/9337/55493+++"])
    state: ApplicationStateName
    regime: RegimeName
    amendments: list[AmendmentName]
    service: Service
    provider: str
    themes: list[Theme]
    enrolled_on: date
    starts_on: date
    submitted_on: date
    year: int
    size: Size
    rate: str = Field(description="percent", examples=["30.00"])
    cost_lines: list[CostLineOut]
    eligible_cost: Euro
    non_eligible_cost: Euro
    subsidy: Euro
    own_share: Euro
    project_amount: Euro
    own_share_received: Euro
    subsidy_received: Euro
    held: HeldOut
    paid_out: PaidOutOut
    ordered_not_executed: Euro
    due: DueOut
    refunded: RefundedOut
    recovery: RecoveryOut | None
    ceiling_claim: Euro
    ceiling_freed: Euro
    ceiling_lost: Euro
    deadlines: DeadlinesOut
    next_deadline: NextDeadlineOut | None
    confirmed_on: date | None
    completed_on: date | None
    ended_on: date | None
    end_reason: str | None
    payout_orders: list[PayoutOrderOut]


class PayoutOrderCreatedOut(ResponseBody):
    order_id: str
    application: ApplicationOut


class StopOut(ResponseBody):
    outcome: Literal["stopped", "recovery_issued"] = Field(
        description="`recovery_issued`: the project stops once the recovery is repaid"
    )
    application: ApplicationOut


class ActorOut(ResponseBody):
    key_id: str
    role: ActorRole
    name: Annotated[str | None, WithJsonSchema({"type": "string"})] = Field(
        default=None, description="the name the keys file gives the key; absent when it gives none"
    )

    @model_serializer(mode="wrap")
    def _name_only_when_given(self, write):  # no return annotation: the schema stays this model's
        content = write(self)
        if self.name is None:
            content.pop("name", None)
        return content


class EventOut(ResponseBody):
    sequence: int
    type: EventType = Field(examples=["OwnShareDeposited"])
    recorded_at: str = Field(json_schema_extra={"format": "date-time"}, examples=["2026-03-05T09:00:00+00:00"])
    business_date: date
    actor: ActorOut
    data: dict[str, Any]
    hash: str
    previous_hash: str


class EventsOut(ResponseBody):
    events: list[EventOut]


class WalletListItemOut(ResponseBody):
    enterprise_number: str = Field(examples=["0403170701"])
    name: str = Field(examples=["Bakkerij Peeters"])


class WalletListOut(ResponseBody):
    wallets: list[WalletListItemOut]
    next_cursor: str | None = Field(
        description="Send it back as `cursor` for the next page; null on the last page",
        examples=["d2FsbGV0cy1hZnRlcjowNDAzMTcwNzAx"],
    )


class LegOut(ResponseBody):
    account: Account
    amount: Euro


class AuditRowOut(ResponseBody):
    sequence: int
    type: EventType
    business_date: date
    recorded_at: str = Field(json_schema_extra={"format": "date-time"})
    actor: ActorOut
    application_id: str | None
    legs: list[LegOut]
    hash: str
    retain_until: date


class AuditTrailOut(ResponseBody):
    rows: list[AuditRowOut]


class VerificationOut(ResponseBody):
    ok: bool
    problems: list[str]


class LapseOut(ResponseBody):
    enterprise_number: str
    application_id: str
    rule: DeadlineRule
    deadline: date


class DeadlineRunOut(ResponseBody):
    lapsed: list[LapseOut]


class UpcomingDeadlineOut(ResponseBody):
    enterprise_number: str
    application_id: str
    project_number: str
    provider: str
    state: ApplicationStateName
    rule: DeadlineRule
    deadline: date
    days_left: int = Field(description="negative: passed, awaiting the deadline run")


class UpcomingDeadlinesOut(ResponseBody):
    today: date
    within_days: int
    applications: list[UpcomingDeadlineOut]


class InboxItemOut(ResponseBody):
    enterprise_number: str
    application_id: str
    project_number: str
    service: Service
    themes: list[Theme]
    starts_on: date
    submitted_on: date
    answer_by: date
    project_amount: Euro
    state: ApplicationStateName
    complete_by: date = Field(description="The service is to be completed by this day")


class InboxOut(ResponseBody):
    provider: str
    applications: list[InboxItemOut]


class OpenPayoutOrderOut(ResponseBody):
    enterprise_number: str
    application_id: str
    project_number: str
    provider: str
    order_id: str
    amount: Euro
    ordered_on: date
    due_by: date
    age_days: int
    overdue: bool


class OpenPayoutOrdersOut(ResponseBody):
    today: date
    overdue_only: bool
    orders: list[OpenPayoutOrderOut]


class TotalsRowOut(ResponseBody):
    date: Day = Field(description="the bank's value date of a receipt, else the business date")
    account_kind: AccountKind = Field(examples=["held"])
    money_in: Euro = Field(alias="in")
    money_out: Euro = Field(alias="out")
    net: Euro


class TotalsOut(ResponseBody):
    model_config = ConfigDict(frozen=True, populate_by_name=True)
    start: date | None = Field(alias="from")
    end: date | None = Field(alias="to")
    rows: list[TotalsRowOut]
