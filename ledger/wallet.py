"""The wallet aggregate: one per enterprise. Each command method decides, then
raises events; the events alone change the state (:mod:`ledger.events`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ledger import commands as c
from ledger import events as ev
from ledger.clock import brussels_date
from ledger.errors import (
    AmountMismatch,
    DeadlinePassed,
    InsufficientFunds,
    InvalidState,
    NotAnSme,
    NotFound,
    PaymentReferenceMismatch,
    ValidationFailed,
)
from ledger.identifiers import canonical_enterprise_number, compact_payment_reference, provider_number
from ledger.money import format_euro
from ledger.regimes import Regime, rules_in_force
from ledger.rules import (
    JUSTIFIED_STOP_REASONS,
    assess_costs,
    check_eligible_enterprise,
    check_minimum_cost,
    check_service,
    completion_deadline,
    days_after,
    decide_subsidy,
    pro_rata_subsidy_part,
    sme_size,
    enterprise_size,
    training_hours_cap,
)
from ledger.state import ApplicationState, Leg, WalletState


@dataclass(frozen=True)
class Lapse:
    application_id: str
    rule: str
    deadline: date


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
        event.mutate(self)
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
        ).sealed()
        wallet = event.mutate(None)
        wallet._pending.append(event)
        return wallet

    def application(self, application_id: str) -> ApplicationState:
        try:
            return self.state.applications[application_id]
        except KeyError:
            raise NotFound(f"no application {application_id} in this wallet") from None

    def _open_application(self, application_id: str) -> ApplicationState:
        application = self.application(application_id)
        if not application.is_open:
            raise InvalidState(f"the application is {application.state}")
        return application

    @staticmethod
    def _check_value_date(application: ApplicationState, value_date: date, today: date) -> None:
        if value_date > today:
            raise ValidationFailed(f"value_date {value_date} lies after the posting date {today}")
        if value_date < application.submitted_on:
            raise ValidationFailed(
                f"value_date {value_date} lies before the submission on {application.submitted_on}"
            )

    # ------------------------------------------------------------------ enterprise

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
        if command.enrolled_on > today:
            raise ValidationFailed(f"an application cannot be submitted before the enrolment on {command.enrolled_on}")
        submit_by = days_after(command.starts_on, regime.submission_days_after_start)
        if today > submit_by:
            raise DeadlinePassed(
                f"applications for a service starting {command.starts_on} were due by {submit_by}"
            )
        costs = assess_costs(command.cost_lines, regime)
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
            deadlines={
                "submit_by": submit_by,
                "answer_by": days_after(today, regime.provider_answer_days),
                "deposit_by": days_after(today, regime.deposit_days) if regime.deposit_before_confirmation else None,
                "complete_by": completion_deadline(regime, today),
            },
            retention_years=regime.retention_years,
            payout_service_days=regime.payout_service_days,
        )
        return self.state.applications[application_id]

    # ------------------------------------------------------------------ provider

    def _awaiting_answer(self, application_id: str, today: date) -> ApplicationState:
        application = self._open_application(application_id)
        if application.confirmed_on is not None:
            raise InvalidState("the provider has answered already: the application is confirmed")
        if today > application.deadlines.answer_by:
            raise DeadlinePassed(f"the provider's answer was due by {application.deadlines.answer_by}")
        return application

    def confirm(self, application_id: str, actor: ev.Actor, now: datetime) -> None:
        """The provider confirms within 14 days of the submission."""
        today = brussels_date(now)
        application = self._awaiting_answer(application_id, today)
        regime = rules_in_force(application.submitted_on)
        deposit_by = None if regime.deposit_before_confirmation else days_after(today, regime.deposit_days)
        self._trigger(ev.ApplicationConfirmed, now, actor, application_id=application_id, deposit_by=deposit_by)

    def refuse(self, application_id: str, command: c.RefuseApplication, actor: ev.Actor, now: datetime) -> None:
        """The provider refuses (e.g. related parties): nothing is paid out, the own
        share deposited goes back and the reserved subsidy is freed in its year."""
        today = brussels_date(now)
        application = self._awaiting_answer(application_id, today)
        self._end(ev.ApplicationRefused, application, now, actor, today, reason=command.reason)

    # ------------------------------------------------------------------ money in

    def deposit_own_share(
        self, application_id: str, command: c.DepositOwnShare, actor: ev.Actor, now: datetime
    ) -> None:
        """Own share (eigen bijdrage) received: exact amount, its structured reference,
        within 30 days (of the submission, or of the confirmation in the pillars regime)."""
        today = brussels_date(now)
        application = self._open_application(application_id)
        regime = rules_in_force(application.submitted_on)
        if application.confirmed_on is None and not regime.deposit_before_confirmation:
            raise InvalidState("in the pillars regime the own share is deposited after the provider's confirmation")
        if application.own_share_received:
            raise InvalidState("the own share has been deposited already")
        deposit_by = application.deadlines.deposit_by
        if deposit_by is not None and today > deposit_by:
            raise DeadlinePassed(f"the own share was due by {deposit_by}")
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
        self._trigger(
            ev.OwnShareDeposited,
            now,
            actor,
            application_id=application_id,
            amount=command.amount,
            value_date=command.value_date,
            payment_reference=application.payment_reference,
            legs=_moves(("enterprise", "held_own_share", command.amount)),
        )

    def top_up(self, application_id: str, command: c.TopUpSubsidy, actor: ev.Actor, now: datetime) -> None:
        """The government tops the wallet up with the subsidy once the own share is in."""
        today = brussels_date(now)
        application = self._open_application(application_id)
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
        self._trigger(
            ev.SubsidyToppedUp,
            now,
            actor,
            application_id=application_id,
            amount=command.amount,
            value_date=command.value_date,
            legs=_moves(("government", "held_subsidy", command.amount)),
        )

    # ------------------------------------------------------------------ money out

    def order_payout(self, application_id: str, command: c.OrderPayout, actor: ev.Actor, now: datetime) -> str:
        """The enterprise orders payment to the provider (never automatic); partial
        orders draw on own share and subsidy pro rata, the subsidy part rounded down."""
        application = self._open_application(application_id)
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
        """The financial manager paid the provider."""
        today = brussels_date(now)
        application = self._open_application(application_id)
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
        application = self._open_application(application_id)
        if application.confirmed_on is None:
            raise InvalidState("the provider has not confirmed the application")
        if application.completed_on is not None:
            raise InvalidState(f"the service was completed on {application.completed_on} already")
        if command.completed_on > today:
            raise ValidationFailed(f"completed_on {command.completed_on} lies in the future")
        if command.completed_on < application.starts_on:
            raise ValidationFailed(f"completed_on {command.completed_on} lies before the start {application.starts_on}")
        if command.completed_on > application.deadlines.complete_by:
            raise DeadlinePassed(f"the service had to be finished by {application.deadlines.complete_by}")
        self._trigger(
            ev.ServiceCompleted, now, actor, application_id=application_id, completed_on=command.completed_on
        )

    # ------------------------------------------------------------------ stops and refunds

    def _release_legs(self, application: ApplicationState) -> tuple[Leg, ...]:
        """Everything still at the financial manager for the application falls due."""
        recovered = application.held("recovered")
        recovered_own = 0
        if application.recovery is not None and application.recovery.debtor == "provider":
            recovered_own = min(recovered, application.recovery.own_share_part)
        return _moves(
            ("held_own_share", "due_enterprise", application.held("held_own_share")),
            ("held_subsidy", "due_government", application.held("held_subsidy")),
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
        ceiling_freed: int | None = None,
        ceiling_used_returned: int = 0,
        **fields: Any,
    ) -> None:
        if ceiling_freed is None:
            ceiling_freed = application.ceiling_claim - application.paid_subsidy
        same_year = business_date.year == application.year
        self._trigger(
            event_class,
            now,
            actor,
            business_date,
            application_id=application.application_id,
            legs=self._release_legs(application),
            ceiling_freed=ceiling_freed if same_year else 0,
            ceiling_used_returned=ceiling_used_returned if same_year else 0,
            cancelled_orders=tuple(o.order_id for o in application.pending_orders),
            **fields,
        )

    def stop(self, application_id: str, command: c.StopProject, actor: ev.Actor, now: datetime) -> str:
        """Stop a project (stopzetting). Returns ``stopped`` or ``recovery_issued``."""
        today = brussels_date(now)
        application = self._open_application(application_id)
        if application.recovery is not None:
            raise InvalidState("a recovery is pending: the project stops once it is repaid")
        paid = application.paid_out
        if paid == 0:
            self._end(ev.ProjectStopped, application, now, actor, today, reason=command.reason, proof=command.proof)
            return "stopped"
        needs_proof = command.reason in JUSTIFIED_STOP_REASONS or command.reason == "provider_cancelled"
        if needs_proof and not command.proof:
            raise ValidationFailed(f"a stop for {command.reason} after a payout needs its proof document")
        if command.reason == "provider_cancelled":
            self._trigger(
                ev.RecoveryIssued,
                now,
                actor,
                application_id=application_id,
                debtor="provider",
                amount=paid,
                own_share_part=application.paid_own_share,
                subsidy_part=application.paid_subsidy,
                reason=command.reason,
                proof=command.proof,
                frees_paid_subsidy=False,
                cancelled_orders=tuple(o.order_id for o in application.pending_orders),
            )
            return "recovery_issued"
        if paid == application.project_amount:
            raise InvalidState(
                "fully paid out: only the provider's cancellation (provider_cancelled, with proof) stops it"
            )
        if command.reason in JUSTIFIED_STOP_REASONS:
            self._end(ev.ProjectStopped, application, now, actor, today, reason=command.reason, proof=command.proof)
            return "stopped"
        self._trigger(
            ev.RecoveryIssued,
            now,
            actor,
            application_id=application_id,
            debtor="enterprise",
            amount=application.paid_subsidy,
            own_share_part=0,
            subsidy_part=application.paid_subsidy,
            reason=command.reason,
            proof=command.proof,
            frees_paid_subsidy=True,
            cancelled_orders=tuple(o.order_id for o in application.pending_orders),
        )
        return "recovery_issued"

    def repay_recovery(self, application_id: str, command: c.RepayRecovery, actor: ev.Actor, now: datetime) -> None:
        """A recovery repaid (in part or in full); in full, the project is stopped."""
        today = brussels_date(now)
        application = self._open_application(application_id)
        recovery = application.recovery
        if recovery is None:
            raise InvalidState("no recovery is pending for this application")
        outstanding = recovery.amount - recovery.repaid
        if command.amount <= 0 or command.amount > outstanding:
            raise AmountMismatch(
                f"{format_euro(outstanding)} is outstanding, not {format_euro(command.amount)}"
            )
        self._check_value_date(application, command.value_date, today)
        self._trigger(
            ev.RecoveryRepaid,
            now,
            actor,
            application_id=application_id,
            amount=command.amount,
            value_date=command.value_date,
            legs=_moves((recovery.debtor, "recovered", command.amount)),
        )
        if command.amount == outstanding:
            returned = application.paid_subsidy if recovery.frees_paid_subsidy else 0
            self._end(
                ev.ProjectStopped,
                application,
                now,
                actor,
                today,
                ceiling_freed=application.ceiling_claim - application.paid_subsidy + returned,
                ceiling_used_returned=returned,
                reason=recovery.reason,
                proof=recovery.proof,
            )

    def execute_refund(self, application_id: str, command: c.ExecuteRefund, actor: ev.Actor, now: datetime) -> None:
        """The financial manager paid back what a stop, lapse or closure made due."""
        today = brussels_date(now)
        application = self.application(application_id)
        account, payee = (
            ("due_enterprise", "enterprise")
            if command.kind == "own_share_to_enterprise"
            else ("due_government", "government")
        )
        due = application.held(account)
        if command.amount <= 0 or command.amount > due:
            raise InsufficientFunds(f"{format_euro(due)} is due ({command.kind}), not {format_euro(command.amount)}")
        self._check_value_date(application, command.value_date, today)
        self._trigger(
            ev.RefundExecuted,
            now,
            actor,
            application_id=application_id,
            kind=command.kind,
            amount=command.amount,
            value_date=command.value_date,
            legs=_moves((account, payee, command.amount)),
        )

    def reverse(
        self, application_id: str, original: ev.Receipt, command: c.ReverseEvent, actor: ev.Actor, now: datetime
    ) -> None:
        """Undo a mis-posted money event with a reversal that names it."""
        application = self.application(application_id)
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
            if application.held(leg.account) + leg.amount < 0 and leg.account in ev.AT_FINANCIAL_MANAGER:
                raise InsufficientFunds(f"reversing it would leave {leg.account} negative")
        if isinstance(original, (ev.OwnShareDeposited, ev.SubsidyToppedUp)):
            if application.held_total - original.amount < application.pending_total:
                raise InsufficientFunds("payout orders still draw on that money")
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
        """Every deadline passed by ``today`` for the wallet's open applications."""
        lapses = []
        for application in self.state.applications.values():
            if not application.is_open:
                continue
            deadlines = application.deadlines
            if application.confirmed_on is None and today > deadlines.answer_by:
                lapses.append(Lapse(application.application_id, "provider_answer", deadlines.answer_by))
            elif (
                application.own_share_received < application.own_share
                and deadlines.deposit_by is not None
                and today > deadlines.deposit_by
            ):
                lapses.append(Lapse(application.application_id, "own_share_deposit", deadlines.deposit_by))
            elif today > deadlines.complete_by and (application.held_total or application.held("recovered")):
                lapses.append(Lapse(application.application_id, "completion", deadlines.complete_by))
        return lapses

    def apply_deadlines(self, actor: ev.Actor, now: datetime) -> list[Lapse]:
        """Record a lapse (or a closure) for every deadline passed; its business date
        is the first day after the deadline, not the day of the run."""
        lapses = self.due_lapses(brussels_date(now))
        for lapse in lapses:
            application = self.state.applications[lapse.application_id]
            event_class = ev.ProjectClosed if lapse.rule == "completion" else ev.ApplicationLapsed
            self._end(
                event_class,
                application,
                now,
                actor,
                lapse.deadline + timedelta(days=1),
                rule=lapse.rule,
                deadline=lapse.deadline,
            )
        return lapses


def regime_of(application: ApplicationState) -> Regime:
    """The regime an application was decided under (for views, never for applying)."""
    return rules_in_force(application.submitted_on)
