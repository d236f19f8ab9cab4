"""Applications (steunaanvragen) of a wallet: submit, read, and one route per
command of their life. Each route turns its body into one ledger command,
calls one ledger method and answers with the application."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.answers import AnswerSource, BackOfficeCommand, ProviderCommand
from api.auth import ApplicationReader, LedgerDep
from api.params import ETAG_HEADER, ApplicationId, EnterpriseNumber
from api.problems import problem_responses
from api.schemas import (
    ApplicationOut,
    CompletionIn,
    DepositIn,
    PayoutIn,
    PayoutOrderCreatedOut,
    PayoutOrderIn,
    RefundIn,
    RefusalIn,
    RepaymentIn,
    ReversalIn,
    StopIn,
    StopOut,
    SubmitApplicationIn,
    TopUpIn,
)

router = APIRouter(prefix="/wallets/{en}/applications", tags=["applications"])
COMMAND_PROBLEMS = problem_responses(401, 403, 404, 412, 422)


@router.post(
    "",
    status_code=201,
    response_model=ApplicationOut,
    operation_id="submit_application",
    summary="Submit an application",
    responses=COMMAND_PROBLEMS,
)
def submit_application(
    en: EnterpriseNumber,
    body: SubmitApplicationIn,
    command: BackOfficeCommand,
):
    """Submit an application: the regime in force today decides the rate, the
    subsidy (capped by the year's ceiling and reserved against it), the own
    share and every deadline. Refusals: `deadline_passed`, `ceiling_exceeded`,
    `below_minimum_cost`, `theme_required`, `service_not_eligible`,
    `invalid_provider_number`, ..."""

    def render(result: tuple[Any, str], views: AnswerSource) -> dict[str, Any]:  # ApplicationOut
        return views.application(result[1])

    return command.run(
        en,
        body,
        lambda **options: command.ledger.submit_application(en, body.command(), command.caller.actor, **options),
        render,
        status=201,
    )


@router.get(
    "/{id}",
    response_model=ApplicationOut,
    operation_id="get_application",
    summary="Read an application",
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(401, 404, 422)},
)
def get_application(
    en: EnterpriseNumber, id: ApplicationId, _caller: ApplicationReader, ledger: LedgerDep, response: Response
):
    """State, amounts held and paid, deadlines. A provider reads only the
    applications naming it. The `ETag` is the wallet's version."""
    version = ledger.wallet_summary(en)["version"]
    view = ledger.application_summary(en, id)
    response.headers["ETag"] = f'"{version}"'
    return view


@router.post(
    "/{id}/confirmation",
    response_model=ApplicationOut,
    operation_id="confirm_application",
    summary="The provider confirms",
    responses=COMMAND_PROBLEMS,
)
def confirm_application(en: EnterpriseNumber, id: ApplicationId, command: ProviderCommand):
    """The provider confirms within 14 days of the submission."""
    return command.on_application(en, id, None)


@router.post(
    "/{id}/refusal",
    response_model=ApplicationOut,
    operation_id="refuse_application",
    summary="The provider refuses",
    responses=COMMAND_PROBLEMS,
)
def refuse_application(en: EnterpriseNumber, id: ApplicationId, body: RefusalIn, command: ProviderCommand):
    """The provider refuses (e.g. related parties): the reserved subsidy is freed
    and any own share deposited falls due back to the enterprise."""
    return command.on_application(en, id, body)


@router.post(
    "/{id}/deposits",
    response_model=ApplicationOut,
    operation_id="deposit_own_share",
    summary="Own share received",
    responses=COMMAND_PROBLEMS,
)
def deposit_own_share(en: EnterpriseNumber, id: ApplicationId, body: DepositIn, command: BackOfficeCommand):
    """The own share (eigen bijdrage) arrived: the exact amount with the
    application's structured payment reference, within 30 days."""
    return command.on_application(en, id, body)


@router.post(
    "/{id}/top-ups",
    response_model=ApplicationOut,
    operation_id="top_up_subsidy",
    summary="Government subsidy received",
    responses=COMMAND_PROBLEMS,
)
def top_up_subsidy(en: EnterpriseNumber, id: ApplicationId, body: TopUpIn, command: BackOfficeCommand):
    return command.on_application(en, id, body)


@router.post(
    "/{id}/payout-orders",
    status_code=201,
    response_model=PayoutOrderCreatedOut,
    operation_id="order_payout",
    summary="The enterprise orders a payout",
    responses=COMMAND_PROBLEMS,
)
def order_payout(en: EnterpriseNumber, id: ApplicationId, body: PayoutOrderIn, command: BackOfficeCommand):
    """Order payment of (part of) the project amount to the provider; it draws on
    own share and subsidy pro rata. Answers the new `order_id`."""

    def render(result: tuple[Any, str], views: AnswerSource) -> dict[str, Any]:  # PayoutOrderCreatedOut
        return {"order_id": result[1], "application": views.application(id)}

    return command.on_application(en, id, body, render, status=201)


@router.post(
    "/{id}/payouts",
    response_model=ApplicationOut,
    operation_id="execute_payout",
    summary="The financial manager paid the provider",
    responses=COMMAND_PROBLEMS,
)
def execute_payout(en: EnterpriseNumber, id: ApplicationId, body: PayoutIn, command: BackOfficeCommand):
    return command.on_application(en, id, body)


@router.post(
    "/{id}/stop",
    response_model=StopOut,
    operation_id="stop_project",
    summary="Stop the project (stopzetting)",
    responses=COMMAND_PROBLEMS,
)
def stop_project(en: EnterpriseNumber, id: ApplicationId, body: StopIn, command: BackOfficeCommand):
    """Stop with a reason: `outcome` is `stopped`, or `recovery_issued` when the
    subsidy paid out must be repaid first."""

    def render(result: tuple[Any, str], views: AnswerSource) -> dict[str, Any]:  # StopOut
        return {"outcome": result[1], "application": views.application(id)}

    return command.on_application(en, id, body, render)


@router.post(
    "/{id}/repayments",
    response_model=ApplicationOut,
    operation_id="repay_recovery",
    summary="A recovery repaid",
    responses=COMMAND_PROBLEMS,
)
def repay_recovery(en: EnterpriseNumber, id: ApplicationId, body: RepaymentIn, command: BackOfficeCommand):
    return command.on_application(en, id, body)


@router.post(
    "/{id}/refunds",
    response_model=ApplicationOut,
    operation_id="execute_refund",
    summary="A refund or return executed",
    responses=COMMAND_PROBLEMS,
)
def execute_refund(en: EnterpriseNumber, id: ApplicationId, body: RefundIn, command: BackOfficeCommand):
    """The financial manager paid back what a stop, lapse or closure made due."""
    return command.on_application(en, id, body)


@router.post(
    "/{id}/reversals",
    response_model=ApplicationOut,
    operation_id="reverse_event",
    summary="Reverse a mis-posted money event",
    responses=COMMAND_PROBLEMS,
)
def reverse_event(en: EnterpriseNumber, id: ApplicationId, body: ReversalIn, command: BackOfficeCommand):
    """A reversal names the money event (its `sequence`) and undoes its legs;
    the original stays in the history."""
    return command.on_application(en, id, body)


@router.post(
    "/{id}/completion",
    response_model=ApplicationOut,
    operation_id="complete_service",
    summary="The service was finished",
    responses=COMMAND_PROBLEMS,
)
def complete_service(en: EnterpriseNumber, id: ApplicationId, body: CompletionIn, command: ProviderCommand):
    """Finished on or before 31 December of the year after the application year."""
    return command.on_application(en, id, body)
