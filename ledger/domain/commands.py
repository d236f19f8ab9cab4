"""Commands: what a caller asks of a wallet, validated before any decision.

Every free-text field follows the one text rule of :mod:`ledger.domain.text`:
names and proof are one line (``Line``), reasons may span lines (``Prose``),
identifiers and references are one line their own rule then reads
(``Identifier``).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ledger.domain.clock import EARLIEST, LATEST
from ledger.domain.lifecycle import StopReason
from ledger.domain.money import Cents
from ledger.domain.regimes import Service
from ledger.domain.rules import CostLine, SmeFigures
from ledger.domain.text import Identifier, Line, Prose, text_problem

_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]"
)
"""An e-mail address as a header may carry it: a dot-atom local part (RFC 5322,
no quoting, no comments), one ``@``, a domain of at least two labels of letters,
digits and inner hyphens (an internationalised domain in its ``xn--`` form)."""


def email_problem(text: str) -> str | None:
    """Why ``text`` is not an e-mail address the notices may write into a header, or None."""
    problem = text_problem(text, required=True)
    if problem:
        return problem
    if len(text) > 254 or len(text.partition("@")[0]) > 64:
        return "an e-mail address has at most 64 characters before the @ and 254 in all"
    if not _EMAIL.fullmatch(text):
        return "not an e-mail address: one name@domain.tld in plain ASCII, no spaces, quotes or brackets"
    return None


def _email(text: str) -> str:
    problem = email_problem(text)
    if problem:
        raise PydanticCustomError("email_not_allowed", problem)
    return text


EmailAddress = Annotated[
    str,
    AfterValidator(_email),
    Field(max_length=254, json_schema_extra={"format": "email", "pattern": _EMAIL.pattern}),
]
"""A contact or provider e-mail address (:func:`email_problem`): no header can be injected through one."""

RefundKind = Literal["own_share_to_enterprise", "subsidy_to_government"]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpenWallet(Command):
    enterprise_number: Identifier
    name: Line = Field(min_length=1, max_length=200)
    sme: SmeFigures
    flemish_establishment: bool = True
    public_participation_percent: Decimal = Field(default=Decimal(0), ge=0, le=100)
    contact_email: EmailAddress | None = None


class ChangeContactEmail(Command):
    """Where the enterprise's notices go from now on (None: nowhere)."""

    contact_email: EmailAddress | None


class FileSmeFigures(Command):
    year: int = Field(ge=EARLIEST.year, le=LATEST.year)
    sme: SmeFigures


class SubmitApplication(Command):
    service: Service
    provider: Identifier
    themes: tuple[Identifier, ...] = ()
    enrolled_on: date
    starts_on: date
    cost_lines: tuple[CostLine, ...] = Field(min_length=1)
    hours: Decimal | None = Field(default=None, gt=0)
    participants: int | None = Field(default=None, ge=1)


class ConfirmApplication(Command):
    """The provider confirms the application."""


class RefuseApplication(Command):
    reason: Prose = Field(min_length=1, max_length=500)


class DepositOwnShare(Command):
    amount: Cents
    payment_reference: Identifier
    value_date: date


class TopUpSubsidy(Command):
    amount: Cents
    value_date: date


class OrderPayout(Command):
    amount: Cents


class ExecutePayout(Command):
    order_id: Identifier
    value_date: date


class StopProject(Command):
    reason: StopReason
    proof: Line | None = Field(default=None, max_length=500)


class RepayRecovery(Command):
    amount: Cents
    value_date: date


class ExecuteRefund(Command):
    kind: RefundKind
    amount: Cents
    value_date: date


class ReverseEvent(Command):
    sequence: int = Field(ge=1)
    reason: Prose = Field(min_length=1, max_length=500)


class CompleteService(Command):
    completed_on: date
