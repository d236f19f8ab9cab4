"""How the console writes money, dates and rates: the way a Flemish auditor
reads them (``€ 1.234,56``, ``31/12/2026``, ``30,00 %``). The one place for it:
the templates use these as Jinja filters, nothing else formats a value."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ledger.domain.money import cents_from_stored

MONTHS = ("januari februari maart april mei juni juli augustus september oktober november december").split()


def cents_of(amount: int | str) -> int:
    """Cents from an amount the ledger shows or stores (``"-1234.56"``) or holds
    (cents): the domain's own reading of a stored amount."""
    return cents_from_stored(amount)


def euro(amount: int | str | None) -> str:
    """``€ 1.234,56`` (``€ -1.234,56`` below zero); empty for no amount."""
    if amount is None or amount == "":
        return ""
    cents = cents_of(amount)
    whole, part = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    return f"€ {sign}{whole:,}".replace(",", ".") + f",{part:02d}"


def day(value: date | str | None) -> str:
    """``31/12/2026``; empty for no date."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return f"{value.day:02d}/{value.month:02d}/{value.year}"


def long_day(value: date | str) -> str:
    """``31 december 2026``."""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def moment(value: datetime | str | None) -> str:
    """A recorded time in UTC: ``31/12/2026 14:05:09 UTC``."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return f"{day(value.date())} {value:%H:%M:%S} UTC"


def percent(rate: str | None) -> str:
    """A rate the ledger shows as ``"30.00"``: ``30,00 %``."""
    return "" if rate is None else f"{rate.replace('.', ',')} %"


def words(name: str | None) -> str:
    """A machine name in words: ``paid_out`` -> ``paid out``."""
    return "" if name is None else name.replace("_", " ")


FILTERS: dict[str, Any] = {
    "euro": euro,
    "day": day,
    "long_day": long_day,
    "moment": moment,
    "percent": percent,
    "words": words,
}


def parse_day(text: str) -> date:
    """A date typed as ``31/12/2026`` or sent by a date field as ``2026-12-31``;
    ValueError if it is neither (a year of more than four digits included)."""
    text = text.strip()
    if "/" in text:
        day_, month, year = text.split("/")
        try:
            return date(int(year), int(month), int(day_))
        except OverflowError:  # int() took any number of digits; date() refuses what a C long cannot hold
            raise ValueError(f"{text!r} is not a date") from None
    return date.fromisoformat(text)
