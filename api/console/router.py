"""The console's pages under ``/console``: read-only, rendered on the server.

Every page but sign-in needs a session (:mod:`api.console.session`); the
session's caller is put where the API's gate puts its caller, so each page
checks its role with the API's own rules (``Reader``, ``Auditing``,
``ApplicationReader``, ``InboxOf`` in :mod:`api.auth`) and a page shows what
the same key may read through the API, no more. Refusals and bad input are
pages with their status (401, 403, 404, 422), never a trace.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine
from datetime import date
from pathlib import Path
from typing import Annotated, Any, get_args
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import reads
from api.auth import (
    ApplicationReader,
    Auditing,
    Caller,
    InboxOf,
    LedgerDep,
    Reader,
    ReadModelsDep,
    current_caller,
    identify,
    own_inbox,
)
from api.console import wallet as wallet_view
from api.console.charts import daily_bars
from api.console.formatting import FILTERS, cents_of, parse_day
from api.console.session import Sessions, same_origin
from api.params import ApplicationId, EnterpriseNumber
from api.problems import TITLES, Forbidden, Unauthorized, error_location, error_message, status_of
from ledger.domain.errors import LedgerError, NotFound, ValidationFailed
from ledger.domain.text import Identifier
from projections.queries import WALLET_PAGE

log = logging.getLogger("kmo_ledger.api")
HERE = Path(__file__).parent
ACCOUNT_KINDS = ("held", "due", "enterprise", "government", "provider", "recovered")

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every value is escaped: a wallet named <script> shows as text
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters.update(FILTERS)
templates = Jinja2Templates(env=_environment)


class SignInFirst(Exception):
    """No session: the page answers with the sign-in form's address."""


class ConsoleRoute(APIRoute):
    """A console route: a refusal, bad input or failure becomes a page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handle(request)
            except SignInFirst:
                return RedirectResponse("/console/sign-in", status_code=303)
            except LedgerError as error:
                return error_page(request, status_of(error.code), error.detail)
            except RequestValidationError as error:
                return error_page(request, 422, _invalid(error))
            except StarletteHTTPException as error:
                return error_page(request, error.status_code, str(error.detail))
            except Exception:
                log.exception("a console page failed")
                return error_page(request, 500, "the page could not be made; the cause is in the server's log")

        return page


def _invalid(error: RequestValidationError) -> str:
    """What is wrong, in the API's words for a 422 (``query.page: ...``)."""
    parts = list(dict.fromkeys(f"{error_location(e)}: {error_message(e)}" for e in error.errors()))
    return "; ".join(parts[:5]) or "the request is not valid"


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    caller = getattr(request.state, "caller", None)
    allowed = _pages_allowed(request) if caller else {}
    return templates.TemplateResponse(
        request, name, {"caller": caller, "allowed": allowed, **context}, status_code=status_code
    )


def error_page(request: Request, status: int, detail: str, **more: Any) -> HTMLResponse:
    title = TITLES.get(status, "Error")
    return render(request, "error.html", status, title=title, status=status, detail=detail, **more)


def sessions(request: Request) -> Sessions:
    return request.app.state.console_sessions


def signed_in(request: Request) -> Caller:
    """The session's caller, set where the gate sets the API's (``request.state.caller``)."""
    caller = sessions(request).caller(request)
    if caller is None:
        raise SignInFirst
    request.state.caller = caller
    return caller


def may(request: Request, rule: Any) -> bool:
    """Whether the signed-in caller passes one of the API's role rules
    (``Reader``, ``Auditing``...): the rule's own check, run here. The checks do
    no I/O, so the coroutine finishes on its first step."""
    check = get_args(rule)[1].dependency
    step = check(request)
    try:
        step.send(None)
    except StopIteration:
        return True
    except Forbidden:
        return False
    step.close()
    raise RuntimeError(f"the role check {check.__qualname__} waited on something")


INBOX_READER = inspect.signature(own_inbox).parameters["caller"].annotation
"""The role rule of a provider's inbox (its own, or any for the back-office)."""
PAGES = {"wallets": Reader, "deadlines": Auditing, "payout_orders": Reader, "reconciliation": Reader}


def _pages_allowed(request: Request) -> dict[str, bool]:
    """Which pages the navigation offers: those the caller's role may read."""
    return {name: may(request, rule) for name, rule in (*PAGES.items(), ("inbox", INBOX_READER))}


public = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
router = APIRouter(
    prefix="/console", route_class=ConsoleRoute, include_in_schema=False, dependencies=[Depends(signed_in)]
)


# ------------------------------------------------------------------ signing in and out


@public.get("/sign-in")
def sign_in_form(request: Request):
    return render(request, "sign_in.html", title="Sign in")


@public.post("/sign-in")
def sign_in(request: Request, key: Annotated[str, Form(max_length=512)] = ""):
    if not same_origin(request):
        return error_page(request, 403, "a sign-in is only taken from this server's own page")
    try:
        caller = identify(sessions(request).keys.current(), f"Bearer {key}")
    except Unauthorized:
        return render(request, "sign_in.html", 401, title="Sign in", refused="That API key is not known.")
    response = RedirectResponse("/console", status_code=303)
    sessions(request).start(response, caller, request)
    return response


@public.post("/sign-out")
def sign_out(request: Request):
    if not same_origin(request):
        return error_page(request, 403, "a sign-out is only taken from this server's own page")
    response = RedirectResponse("/console/sign-in", status_code=303)
    Sessions.end(response, request)
    return response


# ------------------------------------------------------------------ pages


@router.get("")
async def home(request: Request):
    caller = current_caller(request)
    return RedirectResponse("/console/inbox" if caller.provider else "/console/wallets", status_code=303)


@router.get("/wallets")
def wallets(
    request: Request,
    _caller: Reader,
    models: ReadModelsDep,
    q: Annotated[Identifier | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")] = None,
):
    found = models.read(lambda views: views.wallets(q, cursor or None, WALLET_PAGE))
    return render(request, "wallets.html", title="Wallets", q=q or "", found=found, cursor=cursor)


@router.get("/wallets/{en}")
async def wallet(
    request: Request,
    en: EnterpriseNumber,
    _caller: Reader,
    ledger: LedgerDep,
    models: ReadModelsDep,
    as_of: Annotated[str | None, Query(max_length=20)] = None,
    page: Annotated[int, Query(ge=1, le=10**9)] = 1,
    verify: Annotated[bool, Query()] = False,
):
    auditing = may(request, Auditing)
    day = None
    if as_of:
        try:
            day = parse_day(as_of)
        except ValueError:
            raise ValidationFailed(f"as of {as_of!r} is not a date: write it as 31/12/2026") from None
        if not auditing:
            raise Forbidden("only a back-office or auditor key replays a wallet as of a date")
    try:
        view = await run_in_threadpool(
            wallet_view.wallet_page, ledger, models, en, day, page, auditing, auditing and verify
        )
    except NotFound:
        raise
    except LedgerError as error:  # a stored event that cannot be read: say what verification finds
        problems = await run_in_threadpool(ledger.verify_wallet, en) if auditing else []
        if not problems:
            raise
        detail = f"this wallet's stored events cannot be read ({error.detail})"
        return error_page(request, status_of(error.code), detail, problems=problems)
    return render(
        request,
        "wallet.html",
        title=view.summary["name"],
        view=view,
        auditing=auditing,
        as_of=day,
        today=reads.today(ledger),
    )


@router.get("/wallets/{en}/applications/{id}")
def application(
    request: Request, en: EnterpriseNumber, id: ApplicationId, _caller: ApplicationReader, ledger: LedgerDep
):
    found = ledger.application_summary(en, id)
    return render(request, "application.html", title=f"Application {found['project_number']}", a=found, en=en)


@router.get("/inbox")
def inbox_of(request: Request, provider: Annotated[Identifier | None, Query(max_length=32)] = None):
    """A provider's own inbox; the back-office names the provider."""
    caller = current_caller(request)
    number = caller.provider or (provider or "").strip()
    if not number:
        return render(request, "inbox.html", title="Provider inbox", found=None)
    return RedirectResponse(f"/console/inbox/{quote(number, safe='')}", status_code=303)


@router.get("/inbox/{provider}")
def inbox(request: Request, models: ReadModelsDep, provider: InboxOf):
    found = reads.provider_inbox(models, provider)
    return render(request, "inbox.html", title=f"Inbox of {found['provider']}", found=found)


@router.get("/deadlines")
def deadlines(
    request: Request,
    _caller: Auditing,
    models: ReadModelsDep,
    within_days: Annotated[int, Query(ge=0, le=3660)] = 14,
):
    found = reads.upcoming_deadlines(models, within_days)
    return render(request, "deadlines.html", title="Deadlines", found=found)


@router.get("/payout-orders")
def payout_orders(request: Request, _caller: Reader, models: ReadModelsDep, overdue: Annotated[bool, Query()] = True):
    found = reads.open_payout_orders(models, overdue)
    return render(request, "payout_orders.html", title="Payout orders", found=found)


@router.get("/reconciliation")
def reconciliation(
    request: Request,
    _caller: Reader,
    models: ReadModelsDep,
    start: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=20)] = None,
    kind: Annotated[str, Query(max_length=20)] = "held",
):
    first, last = _day_or_none(start, "from"), _day_or_none(end, "to")
    if kind not in ACCOUNT_KINDS:
        raise ValidationFailed(f"no account kind {kind!r}: one of {', '.join(ACCOUNT_KINDS)}")
    found = reads.money_totals(models, first, last)
    per_day: dict[date, list[int]] = {}
    for row in found["rows"]:
        if row["account_kind"] == kind:
            per_day[date.fromisoformat(str(row["date"]))] = [cents_of(row["in"]), cents_of(row["out"])]
    chart = daily_bars(sorted(per_day.items()), (("money in", "bar-in"), ("money out", "bar-out")))
    return render(
        request,
        "reconciliation.html",
        title="Reconciliation totals",
        found=found,
        chart=chart,
        kind=kind,
        kinds=ACCOUNT_KINDS,
        first=first,
        last=last,
    )


def _day_or_none(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return parse_day(text)
    except ValueError:
        raise ValidationFailed(f"{name} {text!r} is not a date: write it as 31/12/2026") from None


@router.get("/{rest:path}")
def no_page(request: Request, rest: str):
    return error_page(request, 404, f"there is no console page /console/{rest}")
