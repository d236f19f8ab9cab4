"""The rule book as tables: each row reads like a line of RULES.md."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ledger.domain.errors import (
    BelowMinimumCost,
    CeilingExceeded,
    InvalidEnterpriseNumber,
    InvalidProviderNumber,
    NotAnSme,
    NotEligible,
    ServiceNotEligible,
    ThemeRequired,
    ValidationFailed,
)
from ledger.domain.identifiers import (
    canonical_enterprise_number,
    compact_payment_reference,
    payment_reference,
    provider_number,
)
from ledger.domain.money import format_euro, parse_euro
from ledger.domain.regimes import rules_in_force
from ledger.domain.rules import (
    CostLine,
    Holding,
    SmeFigures,
    assess_costs,
    check_eligible_enterprise,
    check_minimum_cost,
    check_service,
    decide_subsidy,
    enterprise_size,
    pro_rata_subsidy_part,
    retain_until,
    sme_size,
    training_hours_cap,
)


def subsidy_for(
    applied_on: date,
    service: str,
    size: str,
    eligible: str,
    themes=(),
    granted: str = "0.00",
    hours=None,
    participants=None,
) -> str:
    regime = rules_in_force(applied_on)
    cost = parse_euro(eligible)
    ceilings = {
        rule.key: (rule.amount(size), rule.amount(size) - parse_euro(granted)) for rule in regime.ceilings_for(service)
    }
    rate = regime.rate_for(service, size, frozenset(themes))
    cap = training_hours_cap(regime, service, hours, participants)
    return format_euro(decide_subsidy(rate, cost, ceilings, cap).subsidy)


@pytest.mark.parametrize(
    "applied_on, service, size, eligible, granted, subsidy",
    [
        # pillars regime, training of 10,000: 50% is 5,000, capped by the training pillar to 2,500
        (date(2012, 6, 1), "training", "small", "10000.00", "0.00", "2500.00"),
        # current regime, the same training: small 3,000, medium 2,000
        (date(2026, 3, 1), "training", "small", "10000.00", "0.00", "3000.00"),
        (date(2026, 3, 1), "training", "medium", "10000.00", "0.00", "2000.00"),
        # current regime, a small enterprise with 6,000 already granted applies for 10,000: 1,500
        (date(2026, 3, 1), "training", "small", "10000.00", "6000.00", "1500.00"),
        # simplified regime: 40% / 30%
        (date(2018, 5, 1), "training", "small", "10000.00", "0.00", "4000.00"),
        (date(2018, 5, 1), "advice", "medium", "10000.00", "0.00", "3000.00"),
        # transition regime: 30% / 20%
        (date(2019, 12, 15), "training", "medium", "10000.00", "0.00", "2000.00"),
        # pillars: technology exploration 75%
        (date(2011, 1, 1), "technology_exploration", "medium", "4000.00", "0.00", "3000.00"),
        # rounding down to the cent: 30% of 333.33 is 99.999
        (date(2026, 3, 1), "training", "small", "333.33", "0.00", "99.99"),
    ],
)
def test_worked_examples_of_the_rule_book(applied_on, service, size, eligible, granted, subsidy):
    assert subsidy_for(applied_on, service, size, eligible, granted=granted) == subsidy


@pytest.mark.parametrize(
    "applied_on, regime",
    [
        (date(2009, 1, 1), "pillars"),
        (date(2016, 3, 31), "pillars"),
        (date(2016, 4, 1), "simplified"),
        (date(2019, 11, 30), "simplified"),
        (date(2019, 12, 1), "transition"),
        (date(2019, 12, 31), "transition"),
        (date(2020, 1, 1), "current"),
    ],
)
def test_the_application_date_selects_the_regime(applied_on, regime):
    assert rules_in_force(applied_on).name == regime


def test_no_regime_before_2009():
    with pytest.raises(ValidationFailed):
        rules_in_force(date(2008, 12, 31))


@pytest.mark.parametrize(
    "applied_on, size, themes, subsidy",
    [
        (date(2021, 9, 13), "small", ["cybersecurity"], "3000.00"),  # the day before the amendment
        (date(2021, 9, 14), "small", ["cybersecurity"], "4500.00"),
        (date(2021, 9, 14), "medium", ["cybersecurity"], "3500.00"),
        (date(2024, 1, 1), "small", ["digitalisation"], "3000.00"),
    ],
)
def test_cybersecurity_gets_a_higher_rate_from_2021_09_14(applied_on, size, themes, subsidy):
    assert subsidy_for(applied_on, "training", size, "10000.00", themes=themes) == subsidy


def test_pillars_training_from_2013_is_capped_at_45_euro_per_hour_per_participant():
    assert subsidy_for(date(2013, 2, 1), "training", "small", "1000.00", hours=Decimal(8), participants=1) == "360.00"
    with pytest.raises(ValidationFailed):
        subsidy_for(date(2013, 2, 1), "training", "small", "1000.00")
    assert subsidy_for(date(2012, 12, 31), "training", "small", "1000.00") == "500.00"


def test_an_application_whose_ceiling_is_used_up_is_refused():
    with pytest.raises(CeilingExceeded):
        subsidy_for(date(2026, 3, 1), "training", "small", "1000.00", granted="7500.00")


@pytest.mark.parametrize(
    "applied_on, service, provider, themes, error",
    [
        (date(2023, 1, 1), "training", "DV.O207084", [], ThemeRequired),
        (date(2022, 12, 31), "training", "DV.O207084", [], None),
        (date(2026, 2, 1), "advice", "DV.A207084", ["digitalisation"], ServiceNotEligible),
        (date(2026, 2, 1), "advice", "DV.A207084", ["cybersecurity"], None),
        (date(2026, 1, 31), "advice", "DV.A207084", ["digitalisation"], None),
        (date(2026, 3, 1), "coaching", "DV.A207084", ["digitalisation"], ServiceNotEligible),
        (date(2015, 3, 1), "coaching", "DV.A207084", [], None),
        (date(2026, 3, 1), "training", "DV.A207084", ["digitalisation"], InvalidProviderNumber),
        (date(2026, 3, 1), "training", "DV.O207084", ["astrology"], ValidationFailed),
    ],
)
def test_services_themes_and_provider_registration(applied_on, service, provider, themes, error):
    regime = rules_in_force(applied_on)
    if error is None:
        check_service(regime, service, provider, frozenset(themes))
    else:
        with pytest.raises(error):
            check_service(regime, service, provider, frozenset(themes))


@pytest.mark.parametrize(
    "service, eligible, refused",
    [
        ("training", "99.99", True),
        ("training", "100.00", False),
        ("advice", "499.99", True),
        ("advice", "500.00", False),
    ],
)
def test_minimum_eligible_cost(service, eligible, refused):
    regime = rules_in_force(date(2025, 6, 1))
    if refused:
        with pytest.raises(BelowMinimumCost):
            check_minimum_cost(regime, service, parse_euro(eligible))
    else:
        check_minimum_cost(regime, service, parse_euro(eligible))


def test_costs_count_fee_travel_material_and_capped_catering_but_not_vat_or_transport():
    regime = rules_in_force(date(2025, 6, 1))
    lines = [
        CostLine(kind="fee", amount=parse_euro("1000.00")),
        CostLine(kind="trainer_travel", amount=parse_euro("50.00")),
        CostLine(kind="course_material", amount=parse_euro("30.00")),
        CostLine(kind="catering", amount=parse_euro("300.00"), participants=4, days=2),
        CostLine(kind="vat", amount=parse_euro("210.00")),
        CostLine(kind="participant_transport", amount=parse_euro("80.00")),
    ]
    assessed = assess_costs(lines, regime)
    assert format_euro(sum(a.eligible for a in assessed)) == "1280.00"  # catering capped at 25 x 4 x 2 = 200
    assert format_euro(sum(a.non_eligible for a in assessed)) == "390.00"


@pytest.mark.parametrize(
    "fte, turnover, balance, partners, linked, size",
    [
        (10, "1000000.00", "500000.00", [], [], "small"),
        (49, "12000000.00", "9000000.00", [], [], "small"),  # balance under 10 million suffices
        (50, "1000000.00", "500000.00", [], [], "medium"),
        (249, "60000000.00", "40000000.00", [], [], "medium"),
        (250, "1000000.00", "500000.00", [], [], "large"),
        (100, "60000000.00", "50000000.00", [], [], "large"),
        # a 50% partner with 100 FTE adds 50: 40 + 50 = 90 FTE -> medium
        (
            40,
            "1000000.00",
            "500000.00",
            [{"share_percent": 50, "fte": 100, "turnover": "0", "balance_total": "0"}],
            [],
            "medium",
        ),
        # a linked enterprise (60%) is added in full: 200 + 60 = 260 FTE -> large
        (
            200,
            "1000000.00",
            "500000.00",
            [],
            [{"share_percent": 60, "fte": 60, "turnover": "0", "balance_total": "0"}],
            "large",
        ),
    ],
)
def test_sme_test_with_partner_and_linked_enterprises(fte, turnover, balance, partners, linked, size):
    figures = SmeFigures(
        fte=fte,
        turnover=turnover,
        balance_total=balance,
        partners=[Holding(**p) for p in partners],
        linked=[Holding(**holding) for holding in linked],
    )
    assert enterprise_size(figures) == size


def test_a_large_enterprise_is_refused():
    with pytest.raises(NotAnSme):
        sme_size(SmeFigures(fte=300, turnover="1.00", balance_total="1.00"))


def test_a_partner_held_above_50_percent_is_a_linked_enterprise():
    with pytest.raises(ValidationFailed):
        enterprise_size(
            SmeFigures(
                fte=1,
                turnover="1.00",
                balance_total="1.00",
                partners=[Holding(share_percent=60, fte=1, turnover="0", balance_total="0")],
            )
        )


@pytest.mark.parametrize(
    "flemish, public, refused", [(True, 0, False), (False, 0, True), (True, 24.99, False), (True, 25, True)]
)
def test_flemish_establishment_and_public_participation(flemish, public, refused):
    if refused:
        with pytest.raises(NotEligible):
            check_eligible_enterprise(flemish, Decimal(str(public)))
    else:
        check_eligible_enterprise(flemish, Decimal(str(public)))


@pytest.mark.parametrize("raw", ["BE 0403.170.701", "0403170701", "403170701", "be0403170701"])
def test_enterprise_numbers_in_any_common_spelling_are_canonical(raw):
    assert canonical_enterprise_number(raw) == "0403170701"


@pytest.mark.parametrize("raw", ["0403170702", "2403170701", "12345", ""])
def test_invalid_enterprise_numbers_are_refused(raw):
    with pytest.raises(InvalidEnterpriseNumber):
        canonical_enterprise_number(raw)


def test_provider_number_with_a_zero_for_the_letter_o_is_refused_with_a_hint():
    assert provider_number("DV.O207084") == "DV.O207084"
    with pytest.raises(InvalidProviderNumber, match="zero"):
        provider_number("DV.0207084")


def test_payment_references_are_valid_structured_references():
    reference = payment_reference("seed")
    assert reference.startswith("+++") and compact_payment_reference(reference) is not None
    assert compact_payment_reference("+++123/4567/89002+++") == "123456789002"
    assert compact_payment_reference("+++123/4567/89003+++") is None


def test_a_written_payment_reference_is_read_as_stdnum_reads_it():
    """The ledger's own form is taken apart without stdnum: the same answer for
    good and bad check digits, zero, and the forms stdnum alone reads."""
    import random

    from stdnum.be import ogm_vcs

    def stdnum_reads(raw: str) -> str | None:
        try:
            return ogm_vcs.validate(raw)
        except ValueError:
            return None

    draw = random.Random(6962)
    numbers = ["000000000000", "000000000097", "000000000197", "999999999999"]
    numbers += [f"{draw.randrange(10**12):012d}" for _ in range(2000)]
    numbers += [payment_reference(str(n)).strip("+").replace("/", "") for n in range(200)]
    for digits in numbers:
        for raw in (f"+++{digits[:3]}/{digits[3:7]}/{digits[7:]}+++", f"***{digits[:3]}/{digits[3:7]}/{digits[7:]}***"):
            assert compact_payment_reference(raw) == stdnum_reads(raw), raw
    assert sum(compact_payment_reference(payment_reference(str(n))) is not None for n in range(200)) == 200
    wide = "+++\uff11\uff12\uff13/4567/89002+++"  # full-width digits: stdnum's to read
    assert compact_payment_reference(wide) == stdnum_reads(wide)


@pytest.mark.parametrize(
    "value",
    ["1.001", "-1.00", "NaN", "Infinity", "abc", True, None, [1]]
    # Decimal() takes each of these; a Python caller (a script, the reconciler) must not
    + ["1_000", "\u0661\u0660\u0660\u0660", "\uff11\uff10\uff10\uff10", "1e3", "+1000", " 1000", "1000.0000", "1000."],
)
def test_money_refuses_more_than_cents_negatives_and_non_numbers(value):
    with pytest.raises(ValidationFailed):
        parse_euro(value)


def test_money_accepts_strings_and_numbers_as_euro():
    assert parse_euro("2500") == 250000 and parse_euro(12.5) == 1250 and format_euro(250000) == "2500.00"


def test_partial_payouts_split_pro_rata_and_add_up_exactly():
    subsidy, project = 100, 333  # 1.00 subsidy in a 3.33 project
    parts, before, total = [], 0, 0
    for amount in (111, 111, 111):
        total += amount
        part = pro_rata_subsidy_part(total, subsidy, project, before)
        before += part
        parts.append(part)
    assert sum(parts) == subsidy and all(p <= 34 for p in parts)


def test_retention_counts_years_from_the_anchor_date():
    assert retain_until(5, date(2026, 3, 2)) == date(2031, 3, 2)
    assert retain_until(5, date(2024, 2, 29)) == date(2029, 2, 28)
