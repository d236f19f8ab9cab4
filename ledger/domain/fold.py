"""The one fold: how each wallet event changes the wallet's state.

:func:`apply_event` is the only code that changes a :class:`WalletState`. The
wallet aggregate, replays as of a date and verification all fold through it,
and the read models are checked against it. Applying never reads the clock or
a rule table: every number comes from the event.

Every event type has a handler in :data:`HANDLERS`, named explicitly; a test
fails when one is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ledger.domain import events as ev
from ledger.domain.state import AT_FINANCIAL_MANAGER, ApplicationState, PayoutOrder, Recovery, WalletState, YearCeiling


def apply_event(state: WalletState | None, event: ev.WalletEvent) -> WalletState:
    """``state`` after ``event`` (changed in place; a wallet opening makes it)."""
    if state is None:
        if not isinstance(event, ev.WalletOpened):
            raise ValueError(f"{type(event).__name__} cannot start a wallet")
        return _opened(event)
    handler = HANDLERS.get(type(event))
    if handler is None:
        raise ValueError(f"{type(event).__name__} cannot be applied to a wallet")
    handler(state, event)
    state.last_hash = event.hash
    day = event.business_date
    if state.latest_business_date is None or day > state.latest_business_date:
        state.latest_business_date = day
    return state


def fold(events: Iterable[ev.WalletEvent], state: WalletState | None = None) -> WalletState | None:
    """The state after every one of ``events``, in the order given."""
    for event in events:
        state = apply_event(state, event)
    return state


# --------------------------------------------------------------------------- helpers


def _application(state: WalletState, event: Any) -> ApplicationState:
    application = state.applications[event.application_id]
    if application.latest_on is None or event.business_date > application.latest_on:
        application.latest_on = event.business_date
    return application


def _post_legs(application: ApplicationState, legs: Iterable[Any], sign: int = 1) -> None:
    for leg in legs:
        if leg.account in AT_FINANCIAL_MANAGER:
            application.balances[leg.account] = application.held(leg.account) + sign * leg.amount


def _free_ceiling(state: WalletState, application: ApplicationState, amount: int) -> None:
    if amount <= 0:
        return
    application.ceiling_claim -= amount
    application.freed += amount
    for key in application.ceiling_keys:
        ceiling = state.ceilings[f"{application.year}/{key}"]
        ceiling.claimed -= amount
        ceiling.freed += amount


def _lose_ceiling(state: WalletState, application: ApplicationState, amount: int) -> None:
    if amount <= 0:
        return
    application.lost += amount
    for key in application.ceiling_keys:
        state.ceilings[f"{application.year}/{key}"].lost += amount


def _use_ceiling(state: WalletState, application: ApplicationState, subsidy_part: int) -> None:
    for key in application.ceiling_keys:
        state.ceilings[f"{application.year}/{key}"].used += subsidy_part


def _cancel_orders(application: ApplicationState, order_ids: Iterable[str]) -> None:
    for order_id in order_ids:
        order = application.orders[order_id]
        order.cancelled = True
        application.ordered_total -= order.amount
        application.ordered_subsidy -= order.subsidy_part


# --------------------------------------------------------------------------- wallet events

OPENED_FACTS = tuple(sorted(set(ev.WalletOpened.model_fields) & set(WalletState.model_fields)))
"""What a wallet starts with from its opening: the facts of the same name."""
SUBMITTED_FACTS = tuple(sorted(set(ev.ApplicationSubmitted.model_fields) & set(ApplicationState.model_fields)))
"""What an application starts with from its submission: the facts of the same name."""


def _opened(event: ev.WalletOpened) -> WalletState:
    return WalletState(
        **{name: getattr(event, name) for name in OPENED_FACTS},
        opened_on=event.business_date,
        figures_size=event.size,
        last_hash=event.hash,
        latest_business_date=event.business_date,
    )


def _reopened(state: WalletState, event: ev.WalletOpened) -> None:
    raise ValueError("a wallet is opened only once")


def _contact_changed(state: WalletState, event: ev.ContactEmailChanged) -> None:
    state.contact_email = event.contact_email


def _figures_filed(state: WalletState, event: ev.SmeFiguresFiled) -> None:
    state.figures, state.figures_year, state.figures_size = event.figures, event.year, event.size


# --------------------------------------------------------------------------- application events


def _submitted(state: WalletState, event: ev.ApplicationSubmitted) -> None:
    state.sizes.setdefault(event.year, event.size)
    state.next_sequence = max(state.next_sequence, event.sequence + 1)
    for figure in event.ceilings:
        slot = f"{event.year}/{figure.key}"
        if slot not in state.ceilings:
            state.ceilings[slot] = YearCeiling(year=event.year, key=figure.key, ceiling=figure.ceiling)
        state.ceilings[slot].claimed += event.subsidy
    state.applications[event.application_id] = ApplicationState(
        **{name: getattr(event, name) for name in SUBMITTED_FACTS},
        submitted_on=event.business_date,
        ceiling_keys=tuple(f.key for f in event.ceilings),
        ceiling_claim=event.subsidy,
        latest_on=event.business_date,
    )


def _confirmed(state: WalletState, event: ev.ApplicationConfirmed) -> None:
    application = _application(state, event)
    application.confirmed_on = event.business_date
    if event.deposit_by is not None:
        application.deadlines = application.deadlines.model_copy(update={"deposit_by": event.deposit_by})


def _ended(state: WalletState, event: ev.Ending) -> None:
    """Held money falls due, pending orders named are cancelled, the ceiling is
    freed or lost, the application takes its final state."""
    application = _application(state, event)
    _post_legs(application, event.legs)
    _cancel_orders(application, event.cancelled_orders)
    _free_ceiling(state, application, event.ceiling_freed)
    _use_ceiling(state, application, -event.ceiling_used_returned)
    _lose_ceiling(state, application, event.ceiling_lost)
    application.final_state = event.final_state
    application.final_on = event.business_date
    application.final_reason = getattr(event, "reason", None) or getattr(event, "rule", None)


def _payout_ordered(state: WalletState, event: ev.PayoutOrdered) -> None:
    application = _application(state, event)
    application.orders[event.order_id] = PayoutOrder(
        order_id=event.order_id,
        amount=event.amount,
        own_share_part=event.own_share_part,
        subsidy_part=event.subsidy_part,
        ordered_on=event.business_date,
    )
    application.ordered_total += event.amount
    application.ordered_subsidy += event.subsidy_part


def _recovery_issued(state: WalletState, event: ev.RecoveryIssued) -> None:
    application = _application(state, event)
    _cancel_orders(application, event.cancelled_orders)
    application.recovery = Recovery(
        debtor=event.debtor,
        amount=event.amount,
        own_share_part=event.own_share_part,
        subsidy_part=event.subsidy_part,
        reason=event.reason,
        proof=event.proof,
        frees_paid_subsidy=event.frees_paid_subsidy,
    )


def _service_completed(state: WalletState, event: ev.ServiceCompleted) -> None:
    _application(state, event).completed_on = event.completed_on


# --------------------------------------------------------------------------- receipts: money in or out


def _own_share_counted(state: WalletState, application: ApplicationState, e: Any, sign: int) -> None:
    application.own_share_received += sign * e.amount


def _subsidy_counted(state: WalletState, application: ApplicationState, e: Any, sign: int) -> None:
    application.subsidy_received += sign * e.amount


def _payout_counted(state: WalletState, application: ApplicationState, e: Any, sign: int) -> None:
    order = application.orders[e.order_id]
    order.executed_on = e.business_date if sign > 0 else None
    order.value_date = e.value_date if sign > 0 else None
    application.paid_own_share += sign * e.own_share_part
    application.paid_subsidy += sign * e.subsidy_part
    _use_ceiling(state, application, sign * e.subsidy_part)


def _repayment_counted(state: WalletState, application: ApplicationState, e: Any, sign: int) -> None:
    if application.recovery is not None:
        application.recovery.repaid += sign * e.amount


def _refund_counted(state: WalletState, application: ApplicationState, e: Any, sign: int) -> None:
    if e.kind == "own_share_to_enterprise":
        application.refunded_own_share += sign * e.amount
    else:
        application.returned_subsidy += sign * e.amount


Count = Callable[[WalletState, ApplicationState, Any, int], None]
COUNTS: dict[type[ev.BankMovement], Count] = {
    ev.OwnShareDeposited: _own_share_counted,
    ev.SubsidyToppedUp: _subsidy_counted,
    ev.PayoutExecuted: _payout_counted,
    ev.RecoveryRepaid: _repayment_counted,
    ev.RefundExecuted: _refund_counted,
}
"""What a receipt counts besides its legs (``sign`` -1 undoes it on a reversal)."""


def _received(state: WalletState, event: ev.BankMovement) -> None:
    application = _application(state, event)
    _post_legs(application, event.legs)
    COUNTS[type(event)](state, application, event, 1)
    state.money_events[event.originator_version] = event.application_id


def _reversed(state: WalletState, event: ev.EventReversed) -> None:
    application = _application(state, event)
    _post_legs(application, event.legs)
    receipt = ev.BANK_MOVEMENTS[event.reversed_type]
    original = receipt.model_validate(event.reversed_event)
    COUNTS[receipt](state, application, original, -1)
    application.reversed_sequences.append(event.reversed_sequence)
    state.reversed_money_events[event.reversed_sequence] = event.reason


HANDLERS: dict[type[ev.WalletEvent], Callable[[WalletState, Any], None]] = {
    ev.WalletOpened: _reopened,
    ev.SmeFiguresFiled: _figures_filed,
    ev.ContactEmailChanged: _contact_changed,
    ev.ApplicationSubmitted: _submitted,
    ev.ApplicationConfirmed: _confirmed,
    ev.ApplicationRefused: _ended,
    ev.OwnShareDeposited: _received,
    ev.SubsidyToppedUp: _received,
    ev.PayoutOrdered: _payout_ordered,
    ev.PayoutExecuted: _received,
    ev.ProjectStopped: _ended,
    ev.RecoveryIssued: _recovery_issued,
    ev.RecoveryRepaid: _received,
    ev.RefundExecuted: _received,
    ev.ApplicationLapsed: _ended,
    ev.ProjectClosed: _ended,
    ev.ServiceCompleted: _service_completed,
    ev.EventReversed: _reversed,
}
