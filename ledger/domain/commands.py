"""Commands: what a caller asks of a wallet, validated before any decision.

Every free-text field follows the one text rule of :mod:`ledger.domain.text`:
names and proof are one line (``Line``), reasons may span lines (``Prose``),
identifiers and references are one line their own rule then reads
(``Identifier``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger.domain.clock import EARLIEST, LATEST
from ledger.domain.lifecycle import StopReason
from ledger.domain.money import Cents
from ledger.domain.regimes import Service
from ledger.domain.rules import CostLine, SmeFigures
from ledger.domain.text import Identifier, Line, Prose

RefundKind = Literal["own_share_to_enterprise", "subsidy_to_government"]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpenWallet(Command):
    enterprise_number: Identifier
    name: Line = Field(min_length=1, max_length=200)
    sme: SmeFigures
    flemish_establishment: bool = True
    public_participation_percent: Decimal = Field(default=Decimal(0), ge=0, le=100)


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
