"""The scheme's rules as plain functions, in the rule book's words.

Each rule takes its numbers from a :class:`~ledger.domain.regimes.Regime`; none reads
the clock. They decide; events then record what they decided.
"""

from __future__ import annotations

from calendar import isleap
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger.domain.errors import (
    BelowMinimumCost,
    CeilingExceeded,
    InvalidProviderNumber,
    NotAnSme,
    NotEligible,
    ServiceNotEligible,
    ThemeRequired,
    ValidationFailed,
)
from ledger.domain.identifiers import provider_kind
from ledger.domain.money import Cents, format_euro, percent_of
from ledger.domain.regimes import RECORD_RETENTION_YEARS, THEMES, Regime

# --------------------------------------------------------------------------- SME test

SME_MAX_FTE = Decimal(250)
SME_MAX_TURNOVER = 50_000_000_00
SME_MAX_BALANCE = 43_000_000_00
SMALL_MAX_FTE = Decimal(50)
SMALL_MAX_TURNOVER = 10_000_000_00
SMALL_MAX_BALANCE = 10_000_000_00
PARTNER_FROM, PARTNER_TO = Decimal(25), Decimal(50)
MAX_PUBLIC_PARTICIPATION = Decimal(25)


class Holding(BaseModel):
    """A partner (25 to 50 %) or linked (over 50 %) enterprise's figures."""

    model_config = ConfigDict(frozen=True)
    share_percent: Decimal = Field(ge=0, le=100)
    fte: Decimal = Field(ge=0)
    turnover: Cents
    balance_total: Cents


class SmeFigures(BaseModel):
    """Figures of the last closed financial year, with partner and linked enterprises."""

    model_config = ConfigDict(frozen=True)
    fte: Decimal = Field(ge=0)
    turnover: Cents
    balance_total: Cents
    """Staff in full-time equivalents, annual turnover and balance-sheet total (§2)."""
    partners: tuple[Holding, ...] = ()
    linked: tuple[Holding, ...] = ()
    """Partner (25-50 %) and linked (over 50 %) enterprises, counted pro rata and whole."""


@dataclass(frozen=True)
class Totals:
    fte: Decimal
    turnover: int
    balance_total: int


def autonomy_totals(figures: SmeFigures) -> Totals:
    """Add partner enterprises pro rata to the holding and linked ones in full."""
    fte, turnover, balance = figures.fte, Decimal(figures.turnover), Decimal(figures.balance_total)
    for partner in figures.partners:
        if not PARTNER_FROM <= partner.share_percent <= PARTNER_TO:
            raise ValidationFailed(
                f"a partner enterprise is held from 25% up to and including 50%, "
                f"not {partner.share_percent}% (over 50% is a linked enterprise)"
            )
        share = partner.share_percent / 100
        fte += partner.fte * share
        turnover += partner.turnover * share
        balance += partner.balance_total * share
    for linked in figures.linked:
        if linked.share_percent <= PARTNER_TO:
            raise ValidationFailed(f"a linked enterprise is held for more than 50%, not {linked.share_percent}%")
        fte += linked.fte
        turnover += linked.turnover
        balance += linked.balance_total
    return Totals(fte, int(turnover), int(balance))


def enterprise_size(figures: SmeFigures) -> Literal["small", "medium", "large"]:
    """Small: < 50 FTE and (turnover or balance total <= 10 million); medium: an SME
    (< 250 FTE and turnover <= 50 million or balance total <= 43 million); else large."""
    totals = autonomy_totals(figures)
    if totals.fte < SMALL_MAX_FTE and (
        totals.turnover <= SMALL_MAX_TURNOVER or totals.balance_total <= SMALL_MAX_BALANCE
    ):
        return "small"
    if totals.fte < SME_MAX_FTE and (totals.turnover <= SME_MAX_TURNOVER or totals.balance_total <= SME_MAX_BALANCE):
        return "medium"
    return "large"


def sme_size(figures: SmeFigures) -> Literal["small", "medium"]:
    """The size that decides the rate; a large enterprise is refused (``not_an_sme``)."""
    size = enterprise_size(figures)
    if size == "large":
        totals = autonomy_totals(figures)
        raise NotAnSme(
            f"not a small or medium enterprise: {totals.fte} FTE, turnover "
            f"{format_euro(totals.turnover)}, balance total {format_euro(totals.balance_total)} "
            "(partner and linked enterprises included)"
        )
    return size


def check_eligible_enterprise(flemish_establishment: bool, public_participation: Decimal) -> None:
    """An establishment in the Flemish Region and public participation below 25 %."""
    if not flemish_establishment:
        raise NotEligible("the enterprise must have an establishment in the Flemish Region")
    if public_participation >= MAX_PUBLIC_PARTICIPATION:
        raise NotEligible(f"public-sector participation must stay below 25% (declared {public_participation}%)")


# --------------------------------------------------------------------------- costs

CostKind = Literal[
    "fee",
    "trainer_travel",
    "course_material",
    "catering",
    "vat",
    "participant_transport",
    "other_ineligible",
]
ELIGIBLE_KINDS = ("fee", "trainer_travel", "course_material")
"""Count in full; catering counts up to its cap; the other kinds do not count."""


class CostLine(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: CostKind
    amount: Cents
    participants: int | None = Field(default=None, ge=1)
    days: int | None = Field(default=None, ge=1)


class CostAssessment(BaseModel):
    """How the ledger counted one cost line."""

    model_config = ConfigDict(frozen=True)
    kind: str
    amount: Cents
    eligible: Cents
    non_eligible: Cents
    note: str


def assess_costs(lines: Iterable[CostLine], regime: Regime) -> tuple[CostAssessment, ...]:
    """Split each cost line into eligible and non-eligible parts: fees, trainer travel
    and course material count; catering counts up to the cap per participant per
    started training day; VAT, participants' transport and other costs do not."""
    assessed = []
    for line in lines:
        if line.kind in ELIGIBLE_KINDS:
            eligible, note = line.amount, "eligible"
        elif line.kind == "catering":
            if line.participants is None or line.days is None:
                raise ValidationFailed("a catering line states participants and days")
            cap = regime.catering_cap_per_participant_day * line.participants * line.days
            eligible = min(line.amount, cap)
            note = (
                f"catering capped at {format_euro(regime.catering_cap_per_participant_day)} "
                f"x {line.participants} participants x {line.days} days = {format_euro(cap)}"
            )
        else:
            eligible, note = 0, "not eligible"
        assessed.append(
            CostAssessment(
                kind=line.kind,
                amount=line.amount,
                eligible=eligible,
                non_eligible=line.amount - eligible,
                note=note,
            )
        )
    return tuple(assessed)


# --------------------------------------------------------------------------- the application


def check_service(regime: Regime, service: str, provider: str, themes: frozenset[str]) -> None:
    """The service must exist in the regime, match the provider's registration,
    carry a theme where the regime requires one, and be eligible for that theme."""
    if service not in regime.services:
        raise ServiceNotEligible(
            f"{service!r} is not a service of the {regime.name} regime (services: {', '.join(regime.services)})"
        )
    unknown = sorted(themes - set(THEMES))
    if unknown:
        raise ValidationFailed(f"unknown theme(s): {', '.join(unknown)}")
    needed = "training" if service == "training" else "advice"
    if provider_kind(provider) != needed:
        letter = "O" if needed == "training" else "A"
        raise InvalidProviderNumber(f"{service} needs a provider registered with a DV.{letter} number, not {provider}")
    if regime.themes_required and not themes:
        raise ThemeRequired("from 2023-01-01 every application declares at least one theme: " + ", ".join(THEMES))
    required = regime.services_requiring_theme.get(service)
    if required and required not in themes:
        raise ServiceNotEligible(f"{service} is eligible only with the {required} theme")


def check_project_amount(regime: Regime, costs: Iterable[CostAssessment]) -> None:
    """Decision: an application's costs add up to at most the regime's maximum."""
    total = sum(line.amount for line in costs)
    if total > regime.max_project_amount:
        raise ValidationFailed(
            f"cost_lines add up to {format_euro(total)}, above the maximum of "
            f"{format_euro(regime.max_project_amount)} for one application"
        )


def check_minimum_cost(regime: Regime, service: str, eligible_cost: int) -> None:
    minimum = regime.minimum_cost_for(service)
    if eligible_cost < minimum:
        raise BelowMinimumCost(
            f"the eligible cost {format_euro(eligible_cost)} is below the minimum "
            f"{format_euro(minimum)} for {service} (excl. VAT)"
        )


def training_hours_cap(regime: Regime, service: str, hours: Decimal | None, participants: int | None) -> int | None:
    """Pillars regime from 2013: training subsidy at most 45 euro per hour per participant."""
    if regime.training_hourly_cap is None or service != "training":
        return None
    if hours is None or participants is None:
        raise ValidationFailed("a training application of this period states hours and participants")
    return int(regime.training_hourly_cap * hours * participants)


@dataclass(frozen=True)
class SubsidyDecision:
    rate: int
    rate_amount: int
    subsidy: int
    capped_by: str | None


def decide_subsidy(
    rate: int,
    eligible_cost: int,
    ceilings: dict[str, tuple[int, int]],
    hours_cap: int | None = None,
) -> SubsidyDecision:
    """Subsidy = min(rate x eligible cost, remaining ceiling), rounded down to the cent.

    A subsidy of zero because a ceiling is used up is refused (``ceiling_exceeded``).
    """
    rate_amount = percent_of(eligible_cost, rate)
    subsidy, capped_by = rate_amount, None
    if hours_cap is not None and hours_cap < subsidy:
        subsidy, capped_by = hours_cap, "training_hourly_cap"
    for key, (_amount, remaining) in ceilings.items():
        if remaining < subsidy:
            subsidy, capped_by = max(remaining, 0), key
    if subsidy <= 0:
        raise CeilingExceeded(
            "the yearly ceiling is used up: "
            + ", ".join(f"{k} remaining {format_euro(max(r, 0))}" for k, (_a, r) in ceilings.items())
        )
    return SubsidyDecision(rate, rate_amount, subsidy, capped_by)


# --------------------------------------------------------------------------- records


def retain_until(regime_years: int, anchor: date) -> date:
    """Keep a record ``regime_years`` after its anchor date (29 February falls to the 28th)."""
    year = anchor.year + regime_years
    if anchor.month == 2 and anchor.day == 29 and not isleap(year):
        return date(year, 2, 28)
    return anchor.replace(year=year)


def wallet_record_retain_until(recorded_on: date, longest_application: date | None) -> date:
    """RULES.md §7: a record that belongs to no application (a wallet opening,
    filed SME figures) is kept as long as the wallet's longest-kept application,
    and at least 5 years after it was recorded."""
    own = retain_until(RECORD_RETENTION_YEARS, recorded_on)
    return own if longest_application is None or own >= longest_application else longest_application


def pro_rata_subsidy_part(total_after: int, subsidy: int, project_amount: int, before: int) -> int:
    """The subsidy part of a payout: pro rata to the subsidy's share of the project
    amount, rounded down, counted cumulatively so the parts add up exactly."""
    return (total_after * subsidy) // project_amount - before
