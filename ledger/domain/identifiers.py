"""Identifiers: enterprise numbers (KBO), provider registration numbers and
structured payment references (OGM/VCS)."""

from __future__ import annotations

import hashlib
import re
import uuid
from functools import lru_cache

from stdnum import exceptions as stdnum_errors
from stdnum.be import ogm_vcs, vat

from ledger.domain.errors import InvalidEnterpriseNumber, InvalidProviderNumber

WALLET_NAMESPACE = uuid.UUID("6f1c7c61-2a57-4a8a-9a3e-6d1f5b0c4e21")
_PROVIDER = re.compile(r"^DV\.([OA])(\d{6})$")
_PROVIDER_ZERO_TYPO = re.compile(r"^DV\.0(\d{6})$")
_WRITTEN_REFERENCE = re.compile(r"\+\+\+(\d{3})/(\d{4})/(\d{5})\+\+\+", re.ASCII)
"""A structured reference as the ledger writes it (:func:`payment_reference`)."""


@lru_cache(maxsize=65536)
def canonical_enterprise_number(raw: str) -> str:
    """Enterprise number (ondernemingsnummer, KBO) in its canonical 10-digit form.

    Accepts "BE 0403.170.701", "0403170701" and "403170701"; the last two
    digits must be 97 - (first eight mod 97).
    """
    if not isinstance(raw, str):
        raise InvalidEnterpriseNumber("the enterprise number must be a string")
    try:
        return vat.validate(raw)
    except stdnum_errors.ValidationError as error:
        raise InvalidEnterpriseNumber(f"{raw!r} is not a valid Belgian enterprise number ({error})") from None


@lru_cache(maxsize=65536)
def wallet_id(enterprise_number: str) -> uuid.UUID:
    """The wallet aggregate's id, derived from the canonical enterprise number."""
    return uuid.uuid5(WALLET_NAMESPACE, enterprise_number)


def provider_number(raw: str) -> str:
    """Provider registration number (erkenningsnummer): ``DV.`` + O or A + six digits."""
    text = (raw or "").strip().upper()
    if _PROVIDER.match(text):
        return text
    if _PROVIDER_ZERO_TYPO.match(text):
        raise InvalidProviderNumber(
            f"{raw!r} has a zero after 'DV.': the letter O (training) or A (advice) belongs there"
        )
    raise InvalidProviderNumber(f"{raw!r} is not a provider registration number (expected DV.O123456 or DV.A123456)")


def provider_kind(number: str) -> str:
    """``training`` for an O number, ``advice`` for an A number."""
    return "training" if number[3] == "O" else "advice"


def payment_reference(seed: str, attempt: int = 0) -> str:
    """A Belgian structured payment reference (OGM/VCS) ``+++123/4567/89002+++``.

    Ten digits derived from ``seed`` (and ``attempt``, to pick another on a
    clash), then the mod-97 check digits.
    """
    digest = hashlib.sha256(f"{seed}/{attempt}".encode()).digest()
    base = f"{int.from_bytes(digest[:8], 'big') % 10**10:010d}"
    return f"+++{ogm_vcs.format(base + ogm_vcs.calc_check_digits(base))}+++"


def compact_payment_reference(raw: str) -> str | None:
    """The 12 digits of a structured reference, or None when it is not a valid one.

    A reference as the ledger writes it is taken apart here (what stdnum would
    make of it, in a tenth of the time: verification does it for every
    application); any other form goes through stdnum."""
    written = _WRITTEN_REFERENCE.fullmatch(raw) if isinstance(raw, str) else None
    if written is not None:
        digits = "".join(written.groups())
        valid = int(digits) > 0 and f"{int(digits[:10]) % 97 or 97:02d}" == digits[10:]
        return digits if valid else None
    try:
        return ogm_vcs.validate(raw)
    except (stdnum_errors.ValidationError, TypeError):
        return None
