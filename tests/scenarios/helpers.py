"""A narrator for scenarios: one wallet, commands in the rule book's words."""

from __future__ import annotations

from datetime import date

from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain.money import parse_euro
from tests.conftest import BACK_OFFICE, ENTERPRISE, PROVIDER_ACTOR, sme, training


class Story:
    def __init__(self, ledger: KmoLedger, enterprise: str = ENTERPRISE, **figures):
        self.ledger = ledger
        self.en = enterprise
        ledger.open_wallet(
            c.OpenWallet(enterprise_number=enterprise, name="Bakkerij Peeters", sme=sme(**figures)), BACK_OFFICE
        )

    def submit(self, starts_on: date, **fields) -> str:
        _wallet, application_id = self.ledger.submit_application(
            self.en, c.SubmitApplication(**training(starts_on, **fields)), BACK_OFFICE
        )
        return application_id

    def application(self, application_id: str) -> dict:
        return self.ledger.application_summary(self.en, application_id)

    def confirm(self, application_id: str) -> None:
        self.ledger.handle(self.en, application_id, c.ConfirmApplication(), PROVIDER_ACTOR)

    def deposit(self, application_id: str, value_date: date, amount: str | None = None, reference: str | None = None):
        view = self.application(application_id)
        command = c.DepositOwnShare(
            amount=parse_euro(amount or view["own_share"]),
            payment_reference=reference or view["payment_reference"],
            value_date=value_date,
        )
        self.ledger.handle(self.en, application_id, command, BACK_OFFICE)

    def top_up(self, application_id: str, value_date: date) -> None:
        view = self.application(application_id)
        command = c.TopUpSubsidy(amount=parse_euro(view["subsidy"]), value_date=value_date)
        self.ledger.handle(self.en, application_id, command, BACK_OFFICE)

    def fund(self, application_id: str, value_date: date) -> None:
        self.confirm(application_id)
        self.deposit(application_id, value_date)
        self.top_up(application_id, value_date)

    def order(self, application_id: str, amount: str) -> str:
        _wallet, order_id = self.ledger.handle(
            self.en, application_id, c.OrderPayout(amount=parse_euro(amount)), BACK_OFFICE
        )
        return order_id

    def pay(self, application_id: str, amount: str, value_date: date) -> str:
        order_id = self.order(application_id, amount)
        self.ledger.handle(
            self.en, application_id, c.ExecutePayout(order_id=order_id, value_date=value_date), BACK_OFFICE
        )
        return order_id

    def stop(self, application_id: str, reason: str, proof: str | None = None) -> str:
        _wallet, outcome = self.ledger.handle(
            self.en, application_id, c.StopProject(reason=reason, proof=proof), BACK_OFFICE
        )
        return outcome

    def wallet(self) -> dict:
        return self.ledger.wallet_summary(self.en)

    def events(self) -> list[str]:
        return [type(e).__name__ for e in self.ledger.wallet_events(self.en)]
