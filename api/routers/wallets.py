"""Wallets: open, file SME figures, read, list and search; and the auditor's
reads of one wallet (events, replay as of a date, audit trail, verification)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Response

from api import reads
from api.answers import AnswerSource, BackOfficeCommand, BackOfficeFirstCommand
from api.auth import Auditing, LedgerDep, Reader, ReadModelsDep
from api.params import EnterpriseNumber, never_null
from api.routers.declare import COMMAND_PROBLEMS, operation
from api.schemas import (
    AuditTrailOut,
    ContactIn,
    EventsOut,
    FileSmeFiguresIn,
    IsoDate,
    OpenWalletIn,
    ReplayOut,
    VerificationOut,
    WalletListOut,
    WalletOut,
)
from ledger.application import KmoLedger
from ledger.domain.errors import NotFound
from ledger.domain.events import ApplicationSubmitted, WalletEvent
from ledger.domain.identifiers import canonical_enterprise_number, wallet_id
from ledger.domain.text import Identifier
from ledger.domain.wallet import Wallet
from ledger.summaries import rate_percent
from projections.queries import MAX_WALLET_PAGE, WALLET_PAGE

router = APIRouter(prefix="/wallets", tags=["wallets"])
AsOf = Annotated[
    IsoDate | None,
    Query(
        description="Cut at the end of this Brussels business date (YYYY-MM-DD); default today",
        json_schema_extra=never_null,
    ),
]
MAX_EVENT_PAGE = 1000
After = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**31 - 1,
        description="Only events whose `sequence` is above this one: the last `sequence` of the page before",
        json_schema_extra=never_null,
    ),
]
EventLimit = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_EVENT_PAGE,
        description=f"At most this many events (1 to {MAX_EVENT_PAGE}); without it, every one after `after`",
        json_schema_extra=never_null,
    ),
]


def _wallet(_result: Wallet, views: AnswerSource) -> dict[str, Any]:  # WalletOut
    return views.wallet()


@operation(router.post, "", "Open a wallet for an SME", WalletOut, 403, 409, status_code=201)
def open_wallet(body: OpenWalletIn, command: BackOfficeFirstCommand):
    """Open a wallet: the SME test is run on the figures given and this year's size
    is fixed in `sizes`; `not_an_sme` or `not_eligible` refuse it, a second wallet
    for the same enterprise is a 409 `already_exists`."""
    opening = body.command()
    open_it = partial(command.ledger.open_wallet, opening, command.caller.actor)
    return command.run(opening.enterprise_number, body, open_it, _wallet, status=201)


@operation(router.post, "/{en}/sme-figures", "File new SME figures", WalletOut, *COMMAND_PROBLEMS)
def file_sme_figures(en: EnterpriseNumber, body: FileSmeFiguresIn, command: BackOfficeCommand):
    """File the figures of a closed financial year; they decide the size of the
    next calendar year whose size is not fixed yet."""
    file_them = partial(command.ledger.file_sme_figures, en, body.command(), command.caller.actor)
    return command.run(en, body, file_them, _wallet)


@operation(router.put, "/{en}/contact", "Change the enterprise's contact e-mail", WalletOut, *COMMAND_PROBLEMS)
def change_contact(en: EnterpriseNumber, body: ContactIn, command: BackOfficeCommand):
    """Record where the enterprise's notices go from now on (an event,
    `ContactEmailChanged`; the same address again records nothing). The address
    is checked as an e-mail address: anything else is a 422 and records nothing."""
    change_it = partial(command.ledger.change_contact_email, en, body.command(), command.caller.actor)
    return command.run(en, body, change_it, _wallet)


@operation(router.get, "", "List and search wallets", WalletListOut, 403, 503)
def list_wallets(
    _caller: Reader,
    models: ReadModelsDep,
    q: Annotated[
        Identifier | None,
        Query(
            max_length=200,
            description="An enterprise number in any spelling (`BE 0403.170.701`, `0403170701`, `403170701`) "
            "or any part of the name, in any case",
            json_schema_extra=never_null,
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[A-Za-z0-9_-]*$",
            description="The `next_cursor` of the page before (empty or absent: the first page); "
            "a cursor no page gave is a 422",
            json_schema_extra=never_null,
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_WALLET_PAGE, description=f"Wallets per page, 1 to {MAX_WALLET_PAGE}")
    ] = WALLET_PAGE,
):
    """Wallets in order of enterprise number, a page at a time, optionally only
    those `q` matches. Send `next_cursor` back as `cursor` for the next page
    (null: this is the last); wallets opened while paging do not shift the pages."""
    return models.read(lambda views: views.wallets(q, cursor, limit))


@operation(router.get, "/{en}", "Read a wallet", WalletOut, 403, 404, etag=True)
def get_wallet(en: EnterpriseNumber, _caller: Reader, ledger: LedgerDep, response: Response):
    """The wallet with its `version`, also sent as the `ETag` header."""
    view = ledger.wallet_summary(en)
    response.headers["ETag"] = f'"{view["version"]}"'
    return view


@operation(router.get, "/{en}/events", "The wallet's events, in order", EventsOut, 403, 404)
def list_wallet_events(
    en: EnterpriseNumber,
    _caller: Auditing,
    ledger: LedgerDep,
    as_of: AsOf = None,
    after: After = None,
    limit: EventLimit = None,
):
    """Every event of the wallet (the audit contract), in order; `as_of` keeps
    those whose business date is on or before it. With `after` or `limit`, one
    page of them: those whose `sequence` is above `after`, at most `limit`. The
    next page is `after` the last `sequence` shown; a page of fewer than `limit`
    events is the last."""
    return {
        "events": [
            {
                "sequence": event.originator_version,
                "type": type(event).__name__,
                "recorded_at": event.timestamp.isoformat(),
                "business_date": event.business_date,
                "actor": event.actor.model_dump(),
                "data": _event_data(event),
                "hash": event.hash,
                "previous_hash": event.previous_hash,
            }
            for event in wallet_events_page(ledger, en, as_of, after, limit)
        ]
    }


def wallet_events_page(
    ledger: KmoLedger, en: str, as_of: IsoDate | None, after: int | None, limit: int | None
) -> list[WalletEvent]:
    """The wallet's events (those on or before ``as_of``), or one page of them:
    read from the store a page at a time, never the whole wallet for one page."""
    if after is None and limit is None:
        return ledger.wallet_events(en, as_of)
    aggregate_id = wallet_id(canonical_enterprise_number(en))
    batch_size = limit if as_of is None else MAX_EVENT_PAGE  # as_of may leave many out
    page: list[WalletEvent] = []
    position = after
    while limit is None or len(page) < limit:
        batch = cast(list[WalletEvent], list(ledger.events.get(aggregate_id, gt=position, limit=batch_size)))
        page += [event for event in batch if as_of is None or event.business_date <= as_of]
        if batch_size is None or len(batch) < batch_size:
            break
        position = batch[-1].originator_version
    if not page and not list(ledger.events.get(aggregate_id, lte=1)):
        raise NotFound(f"no wallet for enterprise {en}")
    return page[:limit]


def _event_data(event: WalletEvent) -> dict[str, Any]:
    """An event's facts as the API shows them everywhere: a rate in percent
    (``"30.00"``, as the application's ``rate``), where the stored event holds
    basis points (3000). Only the view changes: the stored event and its hash
    are as recorded."""
    data = event.data()
    if isinstance(event, ApplicationSubmitted):
        data["rate"] = rate_percent(event.rate)
    return data


@operation(router.get, "/{en}/state", "The wallet replayed to a date", ReplayOut, 403, 404)
def replay_wallet(en: EnterpriseNumber, _caller: Auditing, ledger: LedgerDep, as_of: AsOf = None):
    """The wallet as it stood at the end of `as_of`, under the rules recorded then."""
    return ledger.replay(en, as_of or reads.today(ledger))


@operation(router.get, "/{en}/audit-trail", "The wallet's audit trail with retention", AuditTrailOut, 403, 404, 503)
def get_audit_trail(en: EnterpriseNumber, _caller: Auditing, models: ReadModelsDep):
    """Each event with its money legs and the date until which it is kept (rows
    purged after export, `kmo-ledger purge-audit-trail`, are no longer listed)."""
    return reads.audit_trail(models, en)


@operation(router.get, "/{en}/verification", "Check the wallet's hash chain and invariants", VerificationOut, 403, 404)
def verify_wallet(en: EnterpriseNumber, _caller: Auditing, ledger: LedgerDep):
    """The wallet's hash chain (each stored event's hash and its link to the one
    before), then its invariants on every business date: `ok` with no `problems`,
    or each problem found, in words."""
    problems = ledger.verify_wallet(en)
    return {"ok": not problems, "problems": problems}
