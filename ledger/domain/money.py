"""Money: exact euro cents, never floats.

Inside the ledger every amount is an ``int`` of euro cents. On the wire and in
stored events an amount is a string with two decimals (``"2500.00"``).
"""

from __future__ import annotations

import re
from decimal import ROUND_FLOOR, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from ledger.domain.errors import ValidationFailed

CENT = Decimal("0.01")


EURO_TEXT = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?", re.ASCII)
"""A euro amount written out (API.md): ASCII digits, then optionally a point
and one or two decimals; no sign, exponent, underscore, space or other digits."""


def parse_euro(value: Any, field: str = "amount") -> int:
    """Parse a euro amount into cents: a string spelt as :data:`EURO_TEXT`, or
    a finite int, float or Decimal, not negative, with at most two decimals.

    ``Decimal()`` alone would also take ``"1_000"``, ``"1e3"``, ``"+1000"``,
    ``" 1000"`` and other scripts' digits (``"١٠٠٠"``); none of them is money here.
    """
    if isinstance(value, bool):
        raise ValidationFailed(f"{field}: a euro amount is expected, not a boolean")
    if isinstance(value, str):
        if len(value) > 40 or not EURO_TEXT.fullmatch(value):
            raise ValidationFailed(f"{field}: {value[:40]!r} is not a euro amount (digits, at most two decimals)")
        amount = Decimal(value)
    elif isinstance(value, (int, Decimal)):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    else:
        raise ValidationFailed(f"{field}: a euro amount is expected")
    if not amount.is_finite():
        raise ValidationFailed(f"{field}: {value!r} is not a finite euro amount")
    if amount < 0:
        raise ValidationFailed(f"{field}: a negative amount is not allowed")
    if amount != amount.quantize(CENT):
        raise ValidationFailed(f"{field}: at most two decimals (cents) are allowed")
    return int(amount.quantize(CENT) * 100)


def format_euro(cents: int) -> str:
    """Format cents as the wire form ``"2500.00"``."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def percent_of(cents: int, basis_points: int) -> int:
    """``basis_points / 10000`` of an amount, rounded down to the cent."""
    return int((Decimal(cents) * basis_points / 10000).to_integral_value(ROUND_FLOOR))


def cents_from_stored(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and len(value) > 3 and value[-3] == "." and value[-2:].isdigit():
        whole = value[:-3]
        digits = whole[1:] if whole.startswith("-") else whole
        if digits.isdigit():  # the stored form "-12.34": exact without Decimal
            cents = int(digits) * 100 + int(value[-2:])
            return -cents if whole.startswith("-") else cents
    sign = -1 if isinstance(value, str) and value.startswith("-") else 1
    return sign * parse_euro(value.lstrip("-") if sign < 0 else value)


Cents = Annotated[
    int,
    BeforeValidator(cents_from_stored),
    PlainSerializer(format_euro, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{2}$", "examples": ["2500.00"]}),
]
"""An amount in cents; serialised to JSON as a two-decimal euro string."""
