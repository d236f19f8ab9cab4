"""The wallet aggregate: one per enterprise. Each command method decides, then
raises events; the events change the state through the one fold
(:mod:`ledger.domain.fold`). Every command on an application first passes the
lifecycle's guard (:func:`ledger.domain.lifecycle.check_deadlines`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from ledger.domain import commands as c
from ledger.domain import events as ev
from ledger.domain import lifecycle
from ledger.domain.clock import brussels_date
from ledger.domain.errors import (
    AmountMismatch,
    InsufficientFunds,
    InvalidState,
    NotAnSme,
    NotFound,
    PaymentReferenceMismatch,
    ValidationFailed,
)
from ledger.domain.fold import apply_event
from ledger.domain.identifiers import canonical_enterprise_number, compact_payment_reference, provider_number
from ledger.domain.lifecycle import Facts, Lapse, check_deadlines
from ledger.domain.money import format_euro
from ledger.domain.regimes import rules_in_force
from ledger.domain.rules import (
    assess_costs,
    check_eligible_enterprise,
    check_minimum_cost,
    check_project_amount,
    check_service,
    decide_subsidy,
    enterprise_size,
    pro_rata_subsidy_part,
    sme_size,
    training_hours_cap,
)
from ledger.domain.state import AT_FINANCIAL_MANAGER, ApplicationState, Leg, WalletState


def _leg(account: str, amount: int) -> Leg:
    return Leg(account=account, amount=amount)


def _moves(*moves: tuple[str, str, int]) -> tuple[Leg, ...]:
    """Balanced legs for (from account, to account, amount) moves; zero moves dropped."""
    legs: list[Leg] = []
    for source, target, amount in moves:
        if amount:
            legs += [_leg(source, -amount), _leg(target, amount)]
    return tuple(legs)


class Wallet:
    """A KMO-portefeuille (SME wallet) of one enterprise."""

    def __init__(self, id: uuid.UUID, version: int, state: WalletState):
        self.id = id
        self.version = version
        self.state = state
        self._pending: list[ev.WalletEvent] = []

    # ------------------------------------------------------------------ plumbing

    def collect_events(self) -> list[ev.WalletEvent]:
        collected, self._pending = self._pending, []
        return collected

    @property
    def pending_events(self) -> list[ev.WalletEvent]:
        return list(self._pending)

    def _trigger(
        self,
        event_class: type[ev.WalletEvent],
        now: datetime,
        actor: ev.Actor,
        business_date: date | None = None,
        **fields: Any,
    ) -> ev.WalletEvent:
        event = event_class(
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=now,
            business_date=business_date or brussels_date(now),
            actor=actor,
            previous_hash=self.state.last_hash,
            **fields,
        ).sealed()
        self.state = apply_event(self.state, event)
        self.version = event.originator_version
        self._pending.append(event)
        return event

    @classmethod
    def open(cls, wallet_id: uuid.UUID, command: c.OpenWallet, actor: ev.Actor, now: datetime) -> Wallet:
        """Open a wallet for an SME with an establishment in the Flemish Region."""
        check_eligible_enterprise(command.flemish_establishment, command.public_participation_percent)
        size = sme_size(command.sme)
        today = brussels_date(now)
        event = ev.WalletOpened(
            originator_id=wallet_id,
            originator_version=1,
            timestamp=now,
            business_date=today,
            actor=actor,
            previous_hash="",
            enterprise_number=canonical_enterprise_number(command.enterprise_number),
            name=command.name,
            figures=command.sme,
            figures_year=today.year - 1,
            size=size,
            flemish_establishment=command.flemish_establishment,
            public_participation_percent=str(command.public_participation_percent),
            contact_email=command.contact_email,
        ).sealed()
        wallet = cls(wallet_id, 1, apply_event(None, event))
        wallet._pending.append(event)
        return wallet

    def application(self, application_id: str) -> ApplicationState:
        try:
            return self.state.applications[application_id]
        except KeyError:
            raise NotFound(f"no application {application_id} in this wallet") from None

    def _open_application(
        self, application_id: str, command: str, today: date, facts: Facts = Facts()
    ) -> ApplicationState:
        """The application, open and within every deadline that binds ``command``."""
        application = self.application(application_id)
        if not application.is_open:
            raise InvalidState(f"the application is {application.state}")
        check_deadlines(command, application, today, facts)
        return application

    def _bank_movement(
        self,
        event_class: type[ev.BankMovement],
        application_id: str,
        command: Any,
        source: str,
        target: str,
        actor: ev.Actor,
        now: datetime,
        **facts: Any,
    ) -> None:
        """Money that reached or left the financial manager's account: ``command.amount``
        from ``source`` to ``target``, with the bank's value date."""
        self._trigger(
            event_class,
            now,
            actor,
            application_id=application_id,
            amount=command.amount,
            value_date=command.value_date,
            legs=_moves((source, target, command.amount)),
            **facts,
        )

    @staticmethod
    def _check_value_date(application: ApplicationState, value_date: date, today: date) -> None:
        if value_date > today:
            raise ValidationFailed(f"value_date {value_date} lies after the posting date {today}")
        if value_date < application.submitted_on:
            raise ValidationFailed(f"value_date {value_date} lies before the submission on {application.submitted_on}")

    # ------------------------------------------------------------------ enterprise

    def change_contact_email(self, command: c.ChangeContactEmail, actor: ev.Actor, now: datetime) -> None:
        """Record where the enterprise's notices go from now on (nothing when it is unchanged)."""
        if command.contact_email != self.state.contact_email:
            self._trigger(ev.ContactEmailChanged, now, actor, contact_email=command.contact_email)

    def file_sme_figures(self, command: c.FileSmeFigures, actor: ev.Actor, now: datetime) -> None:
        """File new SME figures; they decide the size of the next year not yet fixed."""
        size = enterprise_size(command.sme)
        self._trigger(ev.SmeFiguresFiled, now, actor, year=command.year, figures=command.sme, size=size)

    # ------------------------------------------------------------------ submission

    def submit(
        self, command: c.SubmitApplication, payment_reference: str, actor: ev.Actor, now: datetime
    ) -> ApplicationState:
        """Submit an application (steunaanvraag): regime, rate and capped subsidy are
        decided now and the subsidy is reserved against the year's ceiling."""
        today = brussels_date(now)
        regime = rules_in_force(today)
        provider = provider_number(command.provider)
        themes = frozenset(command.themes)
        check_service(regime, command.service, provider, themes)
        lifecycle.check_submission_window(regime, command.enrolled_on, command.starts_on, today)
        costs = assess_costs(command.cost_lines, regime)
        check_project_amount(regime, costs)
        eligible = sum(line.eligible for line in costs)
        check_minimum_cost(regime, command.service, eligible)
        hours_cap = training_hours_cap(regime, command.service, command.hours, command.participants)
        year = today.year
        size = self.state.sizes.get(year) or self.state.figures_size
        if size == "large":
            raise NotAnSme("the SME figures on file describe a large enterprise")
        rate = regime.rate_for(command.service, size, themes)
        ceilings = {}
        for rule in regime.ceilings_for(command.service):
            existing = self.state.ceiling(year, rule.key)
            amount = existing.ceiling if existing else rule.amount(size)
            ceilings[rule.key] = (amount, amount - (existing.claimed if existing else 0))
        decision = decide_subsidy(rate, eligible, ceilings, hours_cap)
        sequence = self.state.next_sequence
        application_id = str(uuid.uuid5(self.id, f"application/{sequence}"))
        self._trigger(
            ev.ApplicationSubmitted,
            now,
            actor,
            application_id=application_id,
            sequence=sequence,
            project_number=f"{year}-{self.state.enterprise_number}-{sequence:04d}",
            payment_reference=payment_reference,
            regime=regime.name,
            amendments=regime.amendments,
            service=command.service,
            provider=provider,
            themes=tuple(sorted(themes)),
            enrolled_on=command.enrolled_on,
            starts_on=command.starts_on,
            hours=None if command.hours is None else str(command.hours),
            participants=command.participants,
            year=year,
            size=size,
            rate=rate,
            costs=costs,
            eligible_cost=eligible,
            non_eligible_cost=sum(line.non_eligible for line in costs),
            rate_amount=decision.rate_amount,
            subsidy=decision.subsidy,
            capped_by=decision.capped_by,
            own_share=eligible - decision.subsidy,
            ceilings=tuple(
                ev.CeilingFigure(key=key, ceiling=amount, remaining_before=remaining)
                for key, (amount, remaining) in ceilings.items()
            ),
            deadlines=lifecycle.deadlines_at_submission(regime, today, command.starts_on),
            retention_years=regime.retention_years,
            payout_service_days=regime.payout_service_days,
        )
        return self.state.applications[application_id]

    # ------------------------------------------------------------------ provider

    def _awaiting_answer(self, application_id: str, command: str, today: date) -> ApplicationState:
        application = self.application(application_id)
        if application.is_open and application.confirmed_on is not None:
            raise InvalidState("the provider has answered already: the application is confirmed")
        return self._open_application(application_id, command, today)

    def confirm(self, application_id: str, command: c.ConfirmApplication, actor: ev.Actor, now: datetime) -> None:
        """The provider confirms within 14 days of the submission."""
        today = brussels_date(now)
        application = self._awaiting_answer(application_id, "confirm", today)
        regime = rules_in_force(application.submitted_on)
        deposit_by = lifecycle.deposit_deadline_at_confirmation(regime, today)
        self._trigger(ev.ApplicationConfirmed, now, actor, application_id=application_id, deposit_by=deposit_by)

    def refuse(self, application_id: str, command: c.RefuseApplication, actor: ev.Actor, now: datetime) -> None:
        """The provider refuses (e.g. related parties): nothing is paid out, the own
        share deposited goes back and the reserved subsidy is freed in its year."""
        today = brussels_date(now)
        application = self._awaiting_answer(application_id, "refuse", today)
        self._end(ev.ApplicationRefused, application, now, actor, today, reason=command.reason)

    # ------------------------------------------------------------------ money in

    def deposit_own_share(
        self, application_id: str, command: c.DepositOwnShare, actor: ev.Actor, now: datetime
    ) -> None:
        """Own share (eigen bijdrage) received: exact amount, its structured reference,
        within 30 days (of the submission, or of the confirmation in the pillars regime)
        by its value date, posted within the posting grace after that."""
        today = brussels_date(now)
        application = self.application(application_id)
        if application.is_open:
            if (
                application.confirmed_on is None
                and not rules_in_force(application.submitted_on).deposit_before_confirmation
            ):
                raise InvalidState("in the pillars regime the own share is deposited after the provider's confirmation")
            if application.own_share_received:
                raise InvalidState("the own share has been deposited already")
        self._open_application(application_id, "deposit_own_share", today, Facts(value_date=command.value_date))
        self._check_value_date(application, command.value_date, today)
        if compact_payment_reference(command.payment_reference) != compact_payment_reference(
            application.payment_reference
        ):
            raise PaymentReferenceMismatch(
                f"payment reference {command.payment_reference!r} is not this application's "
                f"{application.payment_reference}"
            )
        if command.amount != application.own_share:
            raise AmountMismatch(
                f"the own share is {format_euro(application.own_share)}, not {format_euro(command.amount)}"
            )
        self._bank_movement(
            ev.OwnShareDeposited,
            application_id,
            command,
            "enterprise",
            "held_own_share",
            actor,
            now,
            payment_reference=application.payment_reference,
        )

    def top_up(self, application_id: str, command: c.TopUpSubsidy, actor: ev.Actor, now: datetime) -> None:
        """The government tops the wallet up with the subsidy once the own share is in."""
        today = brussels_date(now)
        application = self._open_application(application_id, "top_up", today)
        if application.confirmed_on is None:
            raise InvalidState("the provider has not confirmed the application yet")
        if application.own_share_received != application.own_share:
            raise InvalidState("the own share is not in yet")
        if application.subsidy_received:
            raise InvalidState("the subsidy has been topped up already")
        self._check_value_date(application, command.value_date, today)
        if command.amount != application.subsidy:
            raise AmountMismatch(
                f"the subsidy is {format_euro(application.subsidy)}, not {format_euro(command.amount)}"
            )
        self._bank_movement(ev.SubsidyToppedUp, application_id, command, "government", "held_subsidy", actor, now)

    # ------------------------------------------------------------------ money out

    def order_payout(self, application_id: str, command: c.OrderPayout, actor: ev.Actor, now: datetime) -> str:
        """The enterprise orders payment to the provider (never automatic); partial
        orders draw on own share and subsidy pro rata, the subsidy part rounded down;
        none after the completion deadline."""
        application = self._open_application(application_id, "order_payout", brussels_date(now))
        if application.state not in ("funded", "paying", "completed") or application.recovery is not None:
            raise InvalidState(f"no payout can be ordered while the application is {application.state}")
        if application.subsidy_received != application.subsidy:
            raise InvalidState("the subsidy is not in yet")
        if command.amount <= 0:
            raise ValidationFailed("a payout order is for a positive amount")
        available = application.held_total - application.pending_total
        if command.amount > available:
            raise InsufficientFunds(
                f"{format_euro(command.amount)} asked, {format_euro(available)} held and not yet ordered"
            )
        subsidy_part = pro_rata_subsidy_part(
            application.ordered_total + command.amount,
            application.subsidy,
            application.project_amount,
            application.ordered_subsidy,
        )
        order_id = str(uuid.uuid5(uuid.UUID(application_id), f"order/{len(application.orders) + 1}"))
        self._trigger(
            ev.PayoutOrdered,
            now,
            actor,
            application_id=application_id,
            order_id=order_id,
            amount=command.amount,
            own_share_part=command.amount - subsidy_part,
            subsidy_part=subsidy_part,
        )
        return order_id

    def execute_payout(self, application_id: str, command: c.ExecutePayout, actor: ev.Actor, now: datetime) -> None:
        """The financial manager paid the provider: an order placed in time may be
        executed after the completion deadline, and after the closure."""
        today = brussels_date(now)
        application = self.application(application_id)
        check_deadlines("execute_payout", application, today)
        order = application.orders.get(command.order_id)
        if order is None:
            raise NotFound(f"no payout order {command.order_id} for this application")
        if order.cancelled or order.executed_on is not None:
            raise InvalidState("the payout order was " + ("cancelled" if order.cancelled else "executed already"))
        self._check_value_date(application, command.value_date, today)
        if order.own_share_part > application.held("held_own_share") or order.subsidy_part > application.held(
            "held_subsidy"
        ):
            raise InsufficientFunds("the wallet no longer holds what this order draws on")
        self._trigger(
            ev.PayoutExecuted,
            now,
            actor,
            application_id=application_id,
            order_id=order.order_id,
            amount=order.amount,
            own_share_part=order.own_share_part,
            subsidy_part=order.subsidy_part,
            value_date=command.value_date,
            legs=(
                _leg("held_own_share", -order.own_share_part),
                _leg("held_subsidy", -order.subsidy_part),
                _leg("provider", order.amount),
            ),
        )

    def complete(self, application_id: str, command: c.CompleteService, actor: ev.Actor, now: datetime) -> None:
        """The service finished (vormingsattest), on or before 31 December of the year after."""
        today = brussels_date(now)
        application = self._open_application(
            application_id, "complete", today, Facts(completed_on=command.completed_on)
        )
        if application.confirmed_on is None:
            raise InvalidState("the provider has not confirmed the application")
        if application.completed_on is not None:
            raise InvalidState(f"the service was completed on {application.completed_on} already")
        if command.completed_on > today:
            raise ValidationFailed(f"completed_on {command.completed_on} lies in the future")
        if command.completed_on < application.starts_on:
            raise ValidationFailed(f"completed_on {command.completed_on} lies before the start {application.starts_on}")
        self._trigger(ev.ServiceCompleted, now, actor, application_id=application_id, completed_on=command.completed_on)

    # ------------------------------------------------------------------ stops and refunds

    def _release_legs(self, application: ApplicationState, keeps_orders: bool) -> tuple[Leg, ...]:
        """What is still at the financial manager for the application falls due; a
        closure keeps what pending payout orders draw on."""
        recovered = application.held("recovered")
        recovered_own = 0
        if application.recovery is not None and application.recovery.debtor == "provider":
            recovered_own = min(recovered, application.recovery.own_share_part)
        if keeps_orders:
            own_share, subsidy = lifecycle.releasable(application)
        else:
            own_share, subsidy = application.held("held_own_share"), application.held("held_subsidy")
        return _moves(
            ("held_own_share", "due_enterprise", own_share),
            ("held_subsidy", "due_government", subsidy),
            ("recovered", "due_enterprise", recovered_own),
            ("recovered", "due_government", recovered - recovered_own),
        )

    def _end(
        self,
        event_class: type[ev.Ending],
        application: ApplicationState,
        now: datetime,
        actor: ev.Actor,
        business_date: date,
        returned: int = 0,
        **fields: Any,
    ) -> None:
        """End the application (:func:`ledger.domain.lifecycle.ending_effect`): a closure
        keeps the payout orders placed in time; every other ending cancels them."""
        keeps_orders = event_class is ev.ProjectClosed
        effect = lifecycle.ending_effect(application, business_date, returned, keeps_orders)
        self._trigger(
            event_class,
            now,
            actor,
            business_date,
            application_id=application.application_id,
            legs=self._release_legs(application, keeps_orders),
            ceiling_freed=effect.freed,
            ceiling_used_returned=effect.used_returned,
            ceiling_lost=effect.lost,
            cancelled_orders=() if keeps_orders else tuple(o.order_id for o in application.pending_orders),
            **fields,
        )

    def stop(self, application_id: str, command: c.StopProject, actor: ev.Actor, now: datetime) -> str:
        """Stop a project (stopzetting), as :func:`ledger.domain.lifecycle.stop_outcome`
        decides. Returns ``stopped`` or ``recovery_issued``."""
        today = brussels_date(now)
        application = self._open_application(application_id, "stop", today)
        outcome = lifecycle.stop_outcome(application, command.reason, command.proof)
        if outcome == "stopped":
            self._end(ev.ProjectStopped, application, now, actor, today, reason=command.reason, proof=command.proof)
            return "stopped"
        from_provider = outcome == "recovery_from_provider"
        self._trigger(
            ev.RecoveryIssued,
            now,
            actor,
            application_id=application_id,
            debtor="provider" if from_provider else "enterprise",
            amount=application.paid_out if from_provider else application.paid_subsidy,
            own_share_part=application.paid_own_share if from_provider else 0,
            subsidy_part=application.paid_subsidy,
            reason=command.reason,
            proof=command.proof,
            frees_paid_subsidy=not from_provider,
            cancelled_orders=tuple(o.order_id for o in application.pending_orders),
        )
        return "recovery_issued"

    def repay_recovery(self, application_id: str, command: c.RepayRecovery, actor: ev.Actor, now: datetime) -> None:
        """A recovery repaid (in part or in full); in full, the project is stopped."""
        today = brussels_date(now)
        application = self._open_application(application_id, "repay_recovery", today)
        recovery = application.recovery
        if recovery is None:
            raise InvalidState("no recovery is pending for this application")
        outstanding = recovery.amount - recovery.repaid
        if command.amount <= 0 or command.amount > outstanding:
            raise AmountMismatch(f"{format_euro(outstanding)} is outstanding, not {format_euro(command.amount)}")
        self._check_value_date(application, command.value_date, today)
        self._bank_movement(ev.RecoveryRepaid, application_id, command, recovery.debtor, "recovered", actor, now)
        if command.amount == outstanding:
            self._end(
                ev.ProjectStopped,
                application,
                now,
                actor,
                today,
                returned=application.paid_subsidy if recovery.frees_paid_subsidy else 0,
                reason=recovery.reason,
                proof=recovery.proof,
            )

    def execute_refund(self, application_id: str, command: c.ExecuteRefund, actor: ev.Actor, now: datetime) -> None:
        """The financial manager paid back what a stop, lapse or closure made due."""
        today = brussels_date(now)
        application = self.application(application_id)
        check_deadlines("execute_refund", application, today)
        account, payee = (
            ("due_enterprise", "enterprise")
            if command.kind == "own_share_to_enterprise"
            else ("due_government", "government")
        )
        due = application.held(account)
        if command.amount <= 0 or command.amount > due:
            raise InsufficientFunds(f"{format_euro(due)} is due ({command.kind}), not {format_euro(command.amount)}")
        self._check_value_date(application, command.value_date, today)
        self._bank_movement(ev.RefundExecuted, application_id, command, account, payee, actor, now, kind=command.kind)

    def reverse(
        self, application_id: str, original: ev.BankMovement, command: c.ReverseEvent, actor: ev.Actor, now: datetime
    ) -> None:
        """Undo a mis-posted money event with a reversal that names it."""
        application = self.application(application_id)
        check_deadlines("reverse", application, brussels_date(now))
        if self.state.money_events.get(command.sequence) != application_id:
            raise NotFound(f"event {command.sequence} is not a money event of this application")
        if command.sequence in self.state.reversed_money_events:
            raise InvalidState(f"event {command.sequence} has been reversed already")
        if not isinstance(original, ev.RefundExecuted) and not application.is_open:
            raise InvalidState(f"the application is {application.state}: only refunds can be reversed now")
        if isinstance(original, ev.RecoveryRepaid) and application.recovery is None:
            raise InvalidState("no recovery is pending")
        legs = tuple(_leg(leg.account, -leg.amount) for leg in original.legs)
        for leg in legs:
            if application.held(leg.account) + leg.amount < 0 and leg.account in AT_FINANCIAL_MANAGER:
                raise InsufficientFunds(f"reversing it would leave {leg.account} negative")
        if isinstance(original, (ev.OwnShareDeposited, ev.SubsidyToppedUp)):
            own_share, subsidy = lifecycle.releasable(application)
            left = own_share if isinstance(original, ev.OwnShareDeposited) else subsidy
            if left < original.amount:
                raise InsufficientFunds(
                    f"payout orders still draw on that money: {format_euro(left)} of it is held and not ordered"
                )
        self._trigger(
            ev.EventReversed,
            now,
            actor,
            application_id=application_id,
            reversed_sequence=command.sequence,
            reversed_type=type(original).__name__,
            reversed_event=original.model_dump(mode="json"),
            reason=command.reason,
            legs=legs,
        )

    # ------------------------------------------------------------------ deadlines

    def due_lapses(self, today: date) -> list[Lapse]:
        """Every deadline passed unmet by ``today`` (:func:`ledger.domain.lifecycle.due_lapse`)."""
        lapses = (lifecycle.due_lapse(a, today) for a in self.state.applications.values())
        return [lapse for lapse in lapses if lapse is not None]

    def apply_deadlines(self, actor: ev.Actor, now: datetime) -> list[Lapse]:
        """Record a lapse (or a closure) for every deadline passed unmet; its business
        date is the first day after the deadline, not the day of the run."""
        lapses = self.due_lapses(brussels_date(now))
        for lapse in lapses:
            self._end(
                ev.ProjectClosed if lapse.closes else ev.ApplicationLapsed,
                self.state.applications[lapse.application_id],
                now,
                actor,
                lapse.business_date,
                rule=lapse.rule,
                deadline=lapse.deadline,
            )
        return lapses


def project_wallet(wallet: Wallet | None, events: Iterable[Any]) -> Wallet | None:
    """The repository's projector: wallet events through the one fold, checked to
    follow one another; a snapshot starts the wallet it holds."""
    for event in events:
        if not isinstance(event, ev.WalletEvent):
            wallet = event.mutate(None)  # a snapshot
            continue
        expected = 1 if wallet is None else wallet.version + 1
        if event.originator_version != expected:
            raise ValueError(f"event version {event.originator_version} does not follow wallet version {expected - 1}")
        if wallet is None:
            wallet = Wallet(event.originator_id, event.originator_version, apply_event(None, event))
        else:
            apply_event(wallet.state, event)
            wallet.version = event.originator_version
    return wallet
