"""Applications (steunaanvragen) of a wallet: submit, read, and one route per
step of their life. The steps are one table, ACTIONS: each row is a route
``POST /wallets/{en}/applications/{id}/<path>`` whose body becomes one ledger
command, decided by ``KmoLedger.handle`` and answered with the application."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import partial
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.answers import AnswerSource, BackOfficeCommand, Command, ProviderCommand
from api.auth import ApplicationReader, LedgerDep
from api.params import ApplicationId, EnterpriseNumber
from api.routers.declare import COMMAND_PROBLEMS, operation
from api.schemas import (
    ApplicationOut,
    CommandIn,
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
from ledger.domain.wallet import Wallet

router = APIRouter(prefix="/wallets/{en}/applications", tags=["applications"])


@operation(router.post, "", "Submit an application", ApplicationOut, *COMMAND_PROBLEMS, status_code=201)
def submit_application(en: EnterpriseNumber, body: SubmitApplicationIn, command: BackOfficeCommand):
    """Submit an application: the regime in force today decides the rate, the
    subsidy (capped by the year's ceiling and reserved against it), the own
    share and every deadline. Refusals: `deadline_passed`, `ceiling_exceeded`,
    `below_minimum_cost`, `theme_required`, `service_not_eligible`,
    `invalid_provider_number`, ..."""
    submit = partial(command.ledger.submit_application, en, body.command(), command.caller.actor)
    return command.run(en, body, submit, _submitted, status=201)


def _submitted(result: tuple[Wallet, str], views: AnswerSource) -> dict[str, Any]:  # ApplicationOut
    return views.application(result[1])


@operation(router.get, "/{id}", "Read an application", ApplicationOut, 404, etag=True)
def get_application(
    en: EnterpriseNumber, id: ApplicationId, _caller: ApplicationReader, ledger: LedgerDep, response: Response
):
    """State, amounts held and paid, deadlines. A provider reads only the
    applications naming it. The `ETag` is the wallet's version."""
    version = ledger.wallet_summary(en)["version"]
    view = ledger.application_summary(en, id)
    response.headers["ETag"] = f'"{version}"'
    return view


@dataclass(frozen=True)
class Action:
    """A step of an application's life: ``POST .../{id}/<path>`` by whoever ``by``
    (a command dependency of :mod:`api.answers`) lets through, its ``body`` (none
    for a confirmation) the command. It answers the application; with ``answer``,
    what the use case answers goes beside it under that name."""

    path: str
    operation_id: str
    body: type[CommandIn] | None
    by: Any
    summary: str
    description: str
    answer: str | None = None
    response_model: type[BaseModel] = ApplicationOut
    status_code: int = 200


# fmt: off
ACTIONS = (
    #      path             operation id           body           by, then the summary and the description
    Action("confirmation",  "confirm_application", None,          ProviderCommand,
           "The provider confirms",
           """The provider confirms within 14 days of the submission."""),
    Action("refusal",       "refuse_application",  RefusalIn,     ProviderCommand,
           "The provider refuses",
           """The provider refuses (e.g. related parties): the reserved subsidy is freed
           and any own share deposited falls due back to the enterprise."""),
    Action("deposits",      "deposit_own_share",   DepositIn,     BackOfficeCommand,
           "Own share received",
           """The own share (eigen bijdrage) arrived: the exact amount with the
           application's structured payment reference, within 30 days."""),
    Action("top-ups",       "top_up_subsidy",      TopUpIn,       BackOfficeCommand,
           "Government subsidy received",
           """The government topped the wallet up with exactly the application's subsidy,
           once the provider confirmed and the own share is in: the application is funded."""),
    Action("payout-orders", "order_payout",        PayoutOrderIn, BackOfficeCommand,
           "The enterprise orders a payout",
           """Order payment of (part of) the project amount to the provider; it draws on
           own share and subsidy pro rata. Answers the new `order_id`.""",
           answer="order_id", response_model=PayoutOrderCreatedOut, status_code=201),
    Action("payouts",       "execute_payout",      PayoutIn,      BackOfficeCommand,
           "The financial manager paid the provider",
           """The payout order (`order_id`) was paid to the provider on `value_date`: its
           own share and subsidy parts leave the wallet."""),
    Action("stop",          "stop_project",        StopIn,        BackOfficeCommand,
           "Stop the project (stopzetting)",
           """Stop with a reason: `outcome` is `stopped`, or `recovery_issued` when the
           subsidy paid out must be repaid first.""",
           answer="outcome", response_model=StopOut),
    Action("repayments",    "repay_recovery",      RepaymentIn,   BackOfficeCommand,
           "A recovery repaid",
           """Money of a recovery (terugvordering) came back, in part or in full; once it
           is repaid in full the stopped project ends."""),
    Action("refunds",       "execute_refund",      RefundIn,      BackOfficeCommand,
           "A refund or return executed",
           """The financial manager paid back what a stop, lapse or closure made due."""),
    Action("reversals",     "reverse_event",       ReversalIn,    BackOfficeCommand,
           "Reverse a mis-posted money event",
           """A reversal names the money event (its `sequence`) and undoes its legs;
           the original stays in the history."""),
    Action("completion",    "complete_service",    CompletionIn,  ProviderCommand,
           "The service was finished",
           """Finished on or before 31 December of the year after the application year."""),
)
# fmt: on


def _declare(action: Action) -> None:
    """The route of ``action``, as if written out: the function is named after the
    operation id, its docstring the description, and its signature gives FastAPI
    the body's schema and the command dependency of the row."""

    def endpoint(*, en: str, id: str, command: Command, body: CommandIn | None = None) -> JSONResponse:
        return command.on_application(en, id, body, action.answer, action.status_code)

    endpoint.__name__ = endpoint.__qualname__ = action.operation_id
    endpoint.__doc__ = action.description
    parameters = {"en": EnterpriseNumber, "id": ApplicationId, "body": action.body, "command": action.by}
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)
            for name, annotation in parameters.items()
            if annotation is not None
        ]
    )
    declare = operation(
        router.post,
        f"/{{id}}/{action.path}",
        action.summary,
        action.response_model,
        *COMMAND_PROBLEMS,
        status_code=action.status_code,
    )
    declare(endpoint)


for _action in ACTIONS:
    _declare(_action)
