"""Regimes: the scheme's numbers as data, one record per period, selected by
the application date (RULES.md section 1).

Nothing outside this module writes a rate, ceiling, deadline or minimum as a
literal. An event records the numbers it used, so a replay never reads this
table again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal, get_args

from ledger.domain.errors import ValidationFailed

THEMES = (
    "business_strategy",
    "professional_skills",
    "digitalisation",
    "sustainability",
    "financial_literacy",
    "innovation",
    "internationalisation",
    "people_management",
    "cybersecurity",
)
Service = Literal[
    "training",
    "advice",
    "technology_exploration",
    "international_advice",
    "strategic_advice",
    "coaching",
]
SERVICES: tuple[str, ...] = get_args(Service)
"""Every service of every regime (the pillars regime had them all)."""
Size = Literal["small", "medium"]
RECORD_RETENTION_YEARS = 5
"""RULES.md §7: a record that belongs to no application (a wallet opening, filed
SME figures) is kept at least this many years after it was recorded (and as long
as the wallet's longest-kept application); an application's own records follow
its regime's ``retention_years``."""


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


def euro(amount: int) -> int:
    """Whole euros as cents (data tables read in euros)."""
    return amount * 100


@dataclass(frozen=True)
class CeilingRule:
    """A yearly ceiling (steunplafond) shared by the services it names."""

    key: str
    services: frozenset[str]
    small: int
    medium: int

    def amount(self, size: str) -> int:
        return self.small if size == "small" else self.medium


@dataclass(frozen=True)
class Regime:
    """Every number of one period of the scheme, amendments already applied."""

    name: str
    starts_on: date
    ends_on: date | None
    services: tuple[str, ...]
    rates: Mapping[str, int]
    """Rate in basis points by size (``small``, ``medium``)."""
    ceilings: tuple[CeilingRule, ...]
    deposit_counted_from: Literal["submission", "confirmation"]
    service_rates: Mapping[str, int] = field(default_factory=lambda: _frozen({}))
    """Rate in basis points for a service, for every size (overrides ``rates``)."""
    theme_rates: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: _frozen({}))
    """Rate by size for an application declaring the theme (best rate wins)."""
    themes_required: bool = False
    services_requiring_theme: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    training_hourly_cap: int | None = None
    """Training subsidy cap in cents per hour per participant."""
    submission_days_after_start: int = 14
    provider_answer_days: int = 14
    deposit_days: int = 30
    deposit_posting_grace_days: int = 5
    """Decision: a deposit whose value date is in time may be posted this many
    calendar days after the deadline (bank statements arrive late)."""
    payout_service_days: int = 14
    completion_years_after: int = 1
    minimum_cost: Mapping[str, int] = field(default_factory=lambda: _frozen({"training": euro(100), "*": euro(500)}))
    catering_cap_per_participant_day: int = euro(25)
    max_project_amount: int = euro(1_000_000)
    """Decision (the seeds state no maximum): an application's costs, eligible and
    not, add up to at most this; a larger one is a typing error or an attack, never
    a project of an SME's training or advice."""
    retention_years: int = 5
    amendments: tuple[str, ...] = ()

    def minimum_cost_for(self, service: str) -> int:
        return self.minimum_cost.get(service, self.minimum_cost["*"])

    def ceilings_for(self, service: str) -> tuple[CeilingRule, ...]:
        return tuple(rule for rule in self.ceilings if service in rule.services)

    def rate_for(self, service: str, size: str, themes: frozenset[str]) -> int:
        rate = self.service_rates.get(service, self.rates[size])
        for theme in themes:
            if theme in self.theme_rates:
                rate = max(rate, self.theme_rates[theme][size])
        return rate

    @property
    def deposit_before_confirmation(self) -> bool:
        return self.deposit_counted_from == "submission"


@dataclass(frozen=True)
class Amendment:
    """A change inside a regime, in force from ``starts_on`` (application date)."""

    name: str
    regime: str
    starts_on: date
    changes: Mapping[str, Any]


def _pillar(key: str, amount: int) -> CeilingRule:
    return CeilingRule(key, frozenset({key}), euro(amount), euro(amount))


def _one_wallet(
    name: str, starts_on: date, ends_on: date | None, rates: tuple[int, int], ceiling: tuple[int, int]
) -> Regime:
    """A regime since 2016: training and advice under one wallet ceiling (small,
    medium euro), at one rate per size (small, medium basis points), the own
    share counted from the submission."""
    return Regime(
        name=name,
        starts_on=starts_on,
        ends_on=ends_on,
        services=("training", "advice"),
        rates=_frozen({"small": rates[0], "medium": rates[1]}),
        ceilings=(CeilingRule("wallet", frozenset({"training", "advice"}), euro(ceiling[0]), euro(ceiling[1])),),
        deposit_counted_from="submission",
    )


_SIMPLIFIED = _one_wallet("simplified", date(2016, 4, 1), date(2019, 11, 30), (4000, 3000), (10_000, 15_000))

REGIMES: tuple[Regime, ...] = (
    Regime(
        name="pillars",
        starts_on=date(2009, 1, 1),
        ends_on=date(2016, 3, 31),
        services=SERVICES,
        rates=_frozen({"small": 5000, "medium": 5000}),
        service_rates=_frozen({"technology_exploration": 7500}),
        ceilings=(
            _pillar("training", 2_500),
            _pillar("advice", 2_500),
            _pillar("technology_exploration", 10_000),
            _pillar("international_advice", 5_000),
            _pillar("strategic_advice", 25_000),
            _pillar("coaching", 10_000),
            CeilingRule(
                "small_projects",
                frozenset({"training", "advice", "technology_exploration"}),
                euro(15_000),
                euro(15_000),
            ),
            CeilingRule(
                "large_projects",
                frozenset({"international_advice", "strategic_advice"}),
                euro(25_000),
                euro(25_000),
            ),
        ),
        deposit_counted_from="confirmation",
    ),
    _SIMPLIFIED,
    # December 2019: the simplified regime's ceilings at the current regime's rates
    replace(
        _SIMPLIFIED,
        name="transition",
        starts_on=date(2019, 12, 1),
        ends_on=date(2019, 12, 31),
        rates=_frozen({"small": 3000, "medium": 2000}),
    ),
    _one_wallet("current", date(2020, 1, 1), None, (3000, 2000), (7_500, 7_500)),
)

AMENDMENTS: tuple[Amendment, ...] = (
    Amendment(
        "pillars_training_hourly_cap",
        "pillars",
        date(2013, 1, 1),
        {"training_hourly_cap": euro(45)},
    ),
    Amendment(
        "cybersecurity_rate",
        "current",
        date(2021, 9, 14),
        {"theme_rates": _frozen({"cybersecurity": _frozen({"small": 4500, "medium": 3500})})},
    ),
    Amendment("themes_required", "current", date(2023, 1, 1), {"themes_required": True}),
    Amendment(
        "advice_cybersecurity_only",
        "current",
        date(2026, 2, 1),
        {"services_requiring_theme": _frozen({"advice": "cybersecurity"})},
    ),
)


@lru_cache(maxsize=4096)
def rules_in_force(on: date) -> Regime:
    """The regime, with its amendments, that governs an application dated ``on``."""
    for regime in REGIMES:
        if regime.starts_on <= on and (regime.ends_on is None or on <= regime.ends_on):
            applied = [a for a in AMENDMENTS if a.regime == regime.name and a.starts_on <= on]
            for amendment in applied:
                regime = replace(regime, **amendment.changes)
            return replace(regime, amendments=tuple(a.name for a in applied))
    raise ValidationFailed(f"no regime of the KMO-portefeuille covers applications dated {on}")
