"""Random sequences of commands; after every step money is conserved, nothing is
negative, ceilings hold and the chain verifies."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from freezegun import freeze_time
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger import commands as c
from ledger.application import KmoLedger
from ledger.errors import LedgerError
from ledger.money import parse_euro
from tests.conftest import BACK_OFFICE, ENTERPRISE, sme, training

START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


class WalletMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.ledger = KmoLedger("memory://")
        self.now = START
        self.clock = freeze_time(self.now)
        self.clock.start()
        self.ledger.open_wallet(c.OpenWallet(enterprise_number=ENTERPRISE, name="Machine", sme=sme()), BACK_OFFICE)
        self.applications: list[str] = []
        self.accepted = 0

    def teardown(self):
        self.clock.stop()
        self.ledger.close()

    def attempt(self, action):
        try:
            action()
            self.accepted += 1
        except LedgerError:
            pass  # a refusal records nothing; the invariants below still must hold

    def view(self, application_id):
        return self.ledger.application_view(ENTERPRISE, application_id)

    @rule(days=st.integers(min_value=0, max_value=40))
    def time_passes(self, days):
        self.clock.stop()
        self.now += timedelta(days=days)
        self.clock = freeze_time(self.now)
        self.clock.start()

    @rule(fee=st.sampled_from(["100.00", "999.99", "5000.00", "12345.67", "30000.00"]))
    def submit(self, fee):
        def act():
            _w, application_id = self.ledger.submit_application(
                ENTERPRISE, c.SubmitApplication(**training(self.now.date() + timedelta(days=3), fee=fee)), BACK_OFFICE
            )
            self.applications.append(application_id)

        self.attempt(act)

    @precondition(lambda self: self.applications)
    @rule(data=st.data())
    def act_on_an_application(self, data):
        application_id = data.draw(st.sampled_from(self.applications))
        view = self.view(application_id)
        today = self.now.date()
        action = data.draw(st.sampled_from(
            ["confirm", "deposit", "top_up", "order", "execute", "stop", "repay", "refund", "deadlines", "complete"]
        ))
        led = self.ledger
        if action == "confirm":
            self.attempt(lambda: led.confirm(ENTERPRISE, application_id, BACK_OFFICE))
        elif action == "deposit":
            self.attempt(lambda: led.deposit_own_share(ENTERPRISE, application_id, c.DepositOwnShare(
                amount=parse_euro(view["own_share"]), payment_reference=view["payment_reference"], value_date=today), BACK_OFFICE))
        elif action == "top_up":
            self.attempt(lambda: led.top_up(ENTERPRISE, application_id, c.TopUpSubsidy(
                amount=parse_euro(view["subsidy"]), value_date=today), BACK_OFFICE))
        elif action == "order":
            cents = data.draw(st.integers(min_value=1, max_value=max(1, parse_euro(view["project_amount"]))))
            self.attempt(lambda: led.order_payout(ENTERPRISE, application_id, c.OrderPayout(amount=cents), BACK_OFFICE))
        elif action == "execute":
            pending = [o["order_id"] for o in view["payout_orders"] if o["state"] == "ordered"]
            if pending:
                self.attempt(lambda: led.execute_payout(ENTERPRISE, application_id, c.ExecutePayout(
                    order_id=pending[0], value_date=today), BACK_OFFICE))
        elif action == "stop":
            reason = data.draw(st.sampled_from(["on_request", "finished_cheaper", "provider_cancelled", "other"]))
            self.attempt(lambda: led.stop(ENTERPRISE, application_id, c.StopProject(reason=reason, proof="doc"), BACK_OFFICE))
        elif action == "repay" and view["recovery"]:
            self.attempt(lambda: led.repay_recovery(ENTERPRISE, application_id, c.RepayRecovery(
                amount=parse_euro(view["recovery"]["outstanding"]), value_date=today), BACK_OFFICE))
        elif action == "refund":
            kind = data.draw(st.sampled_from(["own_share_to_enterprise", "subsidy_to_government"]))
            due = view["due"]["enterprise" if kind == "own_share_to_enterprise" else "government"]
            self.attempt(lambda: led.execute_refund(ENTERPRISE, application_id, c.ExecuteRefund(
                kind=kind, amount=parse_euro(due), value_date=today), BACK_OFFICE))
        elif action == "deadlines":
            led.run_deadlines()
        elif action == "complete":
            self.attempt(lambda: led.complete(ENTERPRISE, application_id, c.CompleteService(completed_on=today), BACK_OFFICE))

    @invariant()
    def the_chain_and_every_invariant_hold(self):
        assert self.ledger.verify_wallet(ENTERPRISE) == []

    @invariant()
    def nothing_held_is_negative_and_ceilings_hold(self):
        wallet = self.ledger.wallet_view(ENTERPRISE)
        assert all(parse_euro(v) >= 0 for v in wallet["held"].values())
        for ceiling in wallet["ceilings"]:
            assert parse_euro(ceiling["remaining"]) >= 0


WalletMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
)
TestWalletInvariants = WalletMachine.TestCase
