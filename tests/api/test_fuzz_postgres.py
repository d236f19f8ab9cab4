"""Generated values in every field, over HTTP on PostgreSQL (issue #17).

Text of any kind (NUL and other controls, bidirectional overrides, lone
surrogates, blanks, a few kilobytes), numbers and number-like strings
(exponents, huge and tiny, signs, underscores, other scripts' digits) and
dates (valid, out of range, malformed) go into one field at a time of every
operation: each body field, the body as a whole, each path and query
parameter, the Idempotency-Key and If-Match headers, while the rest of the
request is what the back office or the provider would send, on a wallet whose
application could take the command.

Whatever was sent, the API answers 2xx or a problem (``application/problem+json``,
a 4xx with a ``code``), never 5xx. What it accepted is at once in the read
models (its event in the wallet's audit trail). At the end the read models
catch up to the last event, the reads across wallets answer and
``kmo-ledger verify`` passes, which also holds every view to a fresh fold of
the events (a NUL in a wallet name once broke PostgreSQL's read models for
good).
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from api import create_app
from api.settings import Settings
from ledger.audit.checkpoints import signing_key, take_checkpoint
from scripts import verify
from tests.api.conftest import Api, hold_to_response_model
from tests.api.test_openapi import OPERATION_IDS
from tests.conftest import TRAINER, sme
from tests.tools.helpers import Tools

pytestmark = pytest.mark.postgres

NOW = "2026-03-02 09:00:00"
TODAY = "2026-03-02"
STARTS_ON = date(2026, 2, 25)
"""Started a few days ago: within the submission window, and a completion today is possible."""
EXAMPLES_PER_FIELD = 10
"""Generated values per field, besides its examples: 157 fields, with their examples about 2,200 requests."""
UNCHECKED = list(HealthCheck)
"""Long text and a slow store are the point here, not a problem in the strategies."""
CLOCK = {"ignore": ["psycopg_pool", "hypothesis"]}
"""The pool's waits and Hypothesis's timing keep the real clock."""


# ----------------------------------------------------------------- generated values


@dataclass(frozen=True)
class JsonText:
    """JSON written as is: a number Python's ``json`` would write otherwise or
    refuse to (``1e400``, ``-0``, five thousand digits), nesting deeper than a
    parser reads."""

    text: str


@dataclass(frozen=True)
class Encoded:
    """A path parameter already percent-encoded, sent as is (``%FF``, ``%2F``);
    in a query, the text itself."""

    text: str


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
"""The field left out of the request."""


@dataclass(frozen=True)
class Spliced:
    """The field's valid value with ``text`` put in at ``at`` (a fraction of its length)."""

    text: str
    at: float

    def __call__(self, valid: Any) -> str:
        written = as_text(valid)
        cut = round(len(written) * self.at)
        return written[:cut] + self.text + written[cut:]


@dataclass(frozen=True)
class Respelt:
    """The field's valid value spelt otherwise: ``how`` names the spelling."""

    how: str

    def __call__(self, valid: Any) -> Any:
        written = as_text(valid)
        if self.how == "number":
            return JsonText(written)
        if self.how == "exponent":
            return JsonText(f"{Decimal(written):E}") if _is_decimal(written) else written + "e0"
        if self.how == "float":
            return float(written) if _is_decimal(written) else written
        if self.how == "full-width":
            return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in written)
        if self.how == "padded":
            return f" {written} "
        if self.how == "upper":
            return written.upper()
        if self.how == "three decimals":
            return written + "0" if "." in written else written + ".000"
        if self.how == "doubled":
            return written + written
        raise LookupError(self.how)


def _is_decimal(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except ArithmeticError:
        return False


HOSTILE_CHARACTERS = (
    "\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x7f\x80\x85\x9b\x9f"  # C0, DEL, C1
    "\u061c\u200b\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"  # bidi, separators
    "\u00a0\u3000\ufeff\ufffd\ufffe\uffff\U0001f600\U000e0001\U0010ffff"  # odd spaces, non-characters, astral
    "'\"\\%_;"  # what SQL and LIKE patterns read specially
)
BLANKS = " \t\n\r\u00a0\u1680\u2000\u200a\u200b\u2060\u3000\ufeff"

_characters = st.characters() | st.sampled_from(HOSTILE_CHARACTERS)
_long = st.tuples(st.text(_characters, min_size=1, max_size=8), st.integers(100, 700)).map(lambda t: t[0] * t[1])
PLAIN_TEXT = st.one_of(
    st.text(),
    st.text(_characters, min_size=1),
    st.text(st.sampled_from(BLANKS)),
    _long,
)
"""Any text a URL or header can carry (no lone surrogates)."""
TEXT = PLAIN_TEXT | st.text(st.characters(categories=["Cs"]) | _characters, min_size=1)
"""Any text, lone surrogates included (sent as JSON escapes)."""

NUMBER_LIKE = [
    "1e3", "1E3", "1e-2", "1_000", "1,000.00", "1.000,00", "\uff11\uff10\uff10\uff10", "\u0661\u0660\u0660",
    "\u0967\u0966", "+1", "-1", "-0", "-0.00", "0.001", "0.00", "0", " 1", "1 ", "1.", ".5", "0x10", "0b1",
    "Infinity", "-Infinity", "NaN", "nan", "inf", "1.000", "00001.00", "999999999999.99", "1000000000000.00",
    "1000000000000.01", "9" * 13, "9" * 40, "9" * 41, "1" * 5000, "1.5\x00", "\u202e00.1", "1\u00a0000",
]  # fmt: skip
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),  # NaN and infinities go out as NaN and Infinity, which Python's json reads
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: JsonText(str(d))),
    st.sampled_from(
        [JsonText(text) for text in ("1" + "0" * 5000, "1e400", "-1e400", "1e-400", "-0", "-0.0", "1E2", "0.1e1")]
    ),
)
NUMBER_STRINGS = st.one_of(
    st.sampled_from(NUMBER_LIKE),
    st.decimals().map(str),  # NaN, sNaN, Infinity, 1E+3, -0E-7 ...
    st.floats().map(repr),
    st.integers().map(str),
    st.from_regex(r"\A[ +-]?[0-9\uff10-\uff19\u0660-\u0669_]{0,16}([.,][0-9]{0,5})?([eE][+-]?[0-9]{1,4})?\Z"),
)
DATE_LIKE = [
    "2026-02-29", "2026-02-30", "2026-13-01", "2026-00-10", "2026-03-00", "0000-01-01", "0001-01-01",
    "9999-12-31", "10000-01-01", "2026-3-2", "20260302", "2026/03/02", "02-03-2026", "2026-03-02T09:00:00+01:00",
    "2026-03-02 ", " 2026-03-02", "\uff12\uff10\uff12\uff16-03-02", "+2026-03-02", "-2026-03-02", "2026-W10-1",
    "2026-061", "2026-03-02\x00", "today", "",
]  # fmt: skip
DATES = st.one_of(
    st.dates().map(date.isoformat),
    st.dates(date(2025, 1, 1), date(2027, 12, 31)).map(date.isoformat),
    st.dates(date(2026, 2, 20), date(2026, 3, 4)).map(date.isoformat),  # around today: often accepted
    st.datetimes().map(datetime.isoformat),
    st.sampled_from(DATE_LIKE),
    st.from_regex(r"\A[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}\Z"),
)
SHAPES = st.one_of(
    st.sampled_from([JsonText("[" * 100_000 + "]" * 100_000), JsonText('{"a":' * 50_000 + "1" + "}" * 50_000)]),
    st.none(),
    st.booleans(),
    st.just(MISSING),
    st.lists(st.integers() | st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=4), max_size=2),
)
ANYTHING = st.one_of(TEXT, NUMBERS, NUMBER_STRINGS, DATES, SHAPES)
EDITS = st.one_of(
    st.builds(Spliced, st.text(_characters, min_size=1, max_size=3), st.floats(0, 1)),
    st.sampled_from(
        [
            Respelt(how)
            for how in ("number", "exponent", "float", "full-width", "padded", "upper", "three decimals", "doubled")
        ]
    ),
)
"""Near misses: the valid value with a character put in, or spelt otherwise."""
SPLICED = (
    *(
        Spliced(char, 0.5)
        for char in "\x00\x01\x1b\x7f\x85\x9b\t\n\r\u2028\u202e\u2066\u200e\ufeff\uffff\U0010ffff'\\%_"
    ),
    "",
    "   ",
)
"""Tried in every text field and query parameter: each kind of character the
text rule is about (NUL first) and a few that SQL reads specially, put into
the valid value; nothing; blank."""
SPLICED_IN_PATH = (*(Spliced(char, 0.5) for char in "\x00\x1b\x85\u202e\ufeff'%"), "", " ")
"""Tried in every path parameter (one dependency reads each kind, for every route)."""


FOR_TEXT = st.one_of(TEXT, EDITS, ANYTHING)
FOR_NUMBER = st.one_of(NUMBERS, NUMBER_STRINGS, EDITS, ANYTHING)
"""For money, counts, percentages, a year, a sequence."""
FOR_DATE = st.one_of(DATES, EDITS, ANYTHING)
FOR_FLAG = st.one_of(st.sampled_from(["true", "false", 1, 0, "yes", "1"]), ANYTHING)
FOR_LIST = st.one_of(ANYTHING, st.lists(ANYTHING, max_size=4))


def for_choice(*choices: str) -> st.SearchStrategy:
    """For a field with named values: each of them, near misses, anything."""
    return st.one_of(st.sampled_from(choices), EDITS, ANYTHING)


PARAMETER = st.one_of(
    PLAIN_TEXT,
    NUMBER_STRINGS,
    DATES,
    EDITS,
    st.sampled_from(
        [Encoded(text) for text in ("%FF", "%ED%A0%80", "%00", "%2F", "%2e%2e", "%", "%G0", "a%2Fb", "%E2%80%AE")]
    ),
)
"""A path or query parameter: what a URL can carry."""
HEADER = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=150, max_size=260),
    st.integers().map(str),
    st.integers().map(lambda n: f'"{n}"'),
    st.sampled_from(["*", '"*"', 'W/"1"', '"1", "2"', '""', '"', "\t"]),
)
"""A header value as a server would pass it on: Latin-1 without C0 controls or DEL."""


# ----------------------------------------------------------------- what is fuzzed


@dataclass(frozen=True)
class Field:
    """One place in a request: ``("body", "sme", "turnover")``, ``("path", "en")``,
    ``("query", "as_of")``, ``("header", "If-Match")``; ``("body", UNKNOWN)`` is a
    field the body does not have, under a generated name; ``("body",)`` the body
    as a whole."""

    where: tuple[str | int, ...]
    values: st.SearchStrategy = field(compare=False)
    examples: tuple[Any, ...] = field(default=(), compare=False)
    """Tried first, whatever else is generated."""

    def __repr__(self) -> str:
        return ".".join(str(part) for part in self.where)


UNKNOWN = "<generated name>"


def body(*where: str | int, values: st.SearchStrategy) -> Field:
    return Field(("body", *where), values, SPLICED if values is FOR_TEXT else ())


def query(name: str) -> Field:
    return Field(("query", name), PARAMETER, SPLICED)


@dataclass(frozen=True)
class Target:
    """What a request acts on: a wallet, maybe its application, order and top-up."""

    en: str
    application: dict | None = None
    order_id: str | None = None
    top_up_sequence: int | None = None

    @property
    def application_id(self) -> str:
        return self.application["application_id"] if self.application else "no-application"


@dataclass(frozen=True)
class Endpoint:
    """An operation of the API: its route, the state it acts on, the request the
    caller would send there and the fields generated values go into."""

    operation: str
    method: str
    path: str
    needs: str
    fields: tuple[Field, ...] = ()
    body: Callable[[Target, Stage], dict[str, Any]] | None = None
    query: dict[str, str] = field(default_factory=dict)
    roles: tuple[str, ...] = ("back-office",)

    def __repr__(self) -> str:
        return self.operation

    def all_fields(self) -> tuple[Field, ...]:
        """Its own fields, every path parameter, the headers of a POST, a field
        the body does not have and the body as a whole."""
        found = list(self.fields)
        for name in ("en", "id", "provider"):
            if "{" + name + "}" in self.path:
                found.append(Field(("path", name), PARAMETER, SPLICED_IN_PATH))
        if self.method == "POST":
            found.append(Field(("header", "Idempotency-Key"), HEADER))
            if self.needs != "nothing":  # opening a wallet and the deadline run take no If-Match
                found.append(Field(("header", "If-Match"), HEADER))
        if self.body is not None:
            found.append(Field(("body", UNKNOWN), st.tuples(st.text(), ANYTHING)))
            found.append(Field(("body",), ANYTHING))
        return tuple(found)


def holding(share_percent: int) -> dict[str, Any]:
    return {"share_percent": share_percent, "fte": "1.5", "turnover": "10000.00", "balance_total": 8000}


def sme_fields(*prefix: str) -> tuple[Field, ...]:
    fields = [
        body(*prefix, "fte", values=FOR_NUMBER),
        body(*prefix, "turnover", values=FOR_NUMBER),
        body(*prefix, "balance_total", values=FOR_NUMBER),
        body(*prefix, "partners", values=FOR_LIST),
        body(*prefix, "linked", values=FOR_LIST),
    ]
    for group in ("partners", "linked"):
        fields += [
            body(*prefix, group, 0, "share_percent", values=FOR_NUMBER),
            body(*prefix, group, 0, "fte", values=FOR_NUMBER),
            body(*prefix, group, 0, "turnover", values=FOR_NUMBER),
            body(*prefix, group, 0, "balance_total", values=FOR_NUMBER),
        ]
    return tuple(fields)


def figures() -> dict[str, Any]:
    return sme(fte="10", partners=[holding(30)], linked=[holding(60)])


def opening(target: Target, stage: Stage) -> dict[str, Any]:
    return {
        "enterprise_number": stage.fresh_number(),
        "name": "Bakkerij Peeters",
        "sme": figures(),
        "flemish_establishment": True,
        "public_participation_percent": "0",
    }


def submission(target: Target, stage: Stage) -> dict[str, Any]:
    return {
        "service": "training",
        "provider": TRAINER,
        "themes": ["digitalisation"],
        "enrolled_on": "2026-02-05",
        "starts_on": STARTS_ON.isoformat(),
        "cost_lines": [
            {"kind": "fee", "amount": "10000.00"},
            {"kind": "catering", "amount": "120.00", "participants": 4, "days": 2},
        ],
        "hours": "12.5",
        "participants": 4,
    }


SERVICES = ("training", "advice", "technology_exploration", "international_advice", "strategic_advice", "coaching")
COST_KINDS = (
    "fee", "trainer_travel", "course_material", "catering", "vat", "participant_transport", "other_ineligible",
)  # fmt: skip
STOP_REASONS = (
    "on_request", "enterprise_ceased", "provider_ceased", "death_or_incapacity", "finished_cheaper",
    "provider_cancelled", "other",
)  # fmt: skip
APPLICATION = "/wallets/{en}/applications/{id}"

COMMANDS = (
    Endpoint(
        "open_wallet",
        "POST",
        "/wallets",
        "nothing",
        (
            body("enterprise_number", values=FOR_TEXT),
            body("name", values=FOR_TEXT),
            body("sme", values=ANYTHING),
            *sme_fields("sme"),
            body("flemish_establishment", values=FOR_FLAG),
            body("public_participation_percent", values=FOR_NUMBER),
        ),
        opening,
    ),
    Endpoint(
        "file_sme_figures",
        "POST",
        "/wallets/{en}/sme-figures",
        "wallet",
        (body("year", values=FOR_NUMBER), *sme_fields("sme")),
        lambda target, stage: {"year": 2026, "sme": figures()},
    ),
    Endpoint(
        "submit_application",
        "POST",
        "/wallets/{en}/applications",
        "wallet",
        (
            body("service", values=for_choice(*SERVICES)),
            body("provider", values=FOR_TEXT),
            body("themes", values=FOR_LIST),
            body("themes", 0, values=for_choice("digitalisation", "sustainability")),
            body("enrolled_on", values=FOR_DATE),
            body("starts_on", values=FOR_DATE),
            body("cost_lines", values=FOR_LIST),
            body("cost_lines", 0, "kind", values=for_choice(*COST_KINDS)),
            body("cost_lines", 0, "amount", values=FOR_NUMBER),
            body("cost_lines", 1, "amount", values=FOR_NUMBER),
            body("cost_lines", 1, "participants", values=FOR_NUMBER),
            body("cost_lines", 1, "days", values=FOR_NUMBER),
            body("hours", values=FOR_NUMBER),
            body("participants", values=FOR_NUMBER),
        ),
        submission,
    ),
    Endpoint(
        "confirm_application", "POST", APPLICATION + "/confirmation", "waiting", roles=("back-office", "provider")
    ),
    Endpoint(
        "refuse_application",
        "POST",
        APPLICATION + "/refusal",
        "waiting",
        (body("reason", values=FOR_TEXT),),
        lambda target, stage: {"reason": "related parties:\n\tthe trainer is the owner's brother"},
        roles=("back-office", "provider"),
    ),
    Endpoint(
        "deposit_own_share",
        "POST",
        APPLICATION + "/deposits",
        "confirmed",
        (
            body("amount", values=FOR_NUMBER),
            body("payment_reference", values=FOR_TEXT),
            body("value_date", values=FOR_DATE),
        ),
        lambda target, stage: Api.deposit_of(target.application, TODAY),
    ),
    Endpoint(
        "top_up_subsidy",
        "POST",
        APPLICATION + "/top-ups",
        "deposited",
        (body("amount", values=FOR_NUMBER), body("value_date", values=FOR_DATE)),
        lambda target, stage: {"amount": target.application["subsidy"], "value_date": TODAY},
    ),
    Endpoint(
        "order_payout",
        "POST",
        APPLICATION + "/payout-orders",
        "funded",
        (body("amount", values=FOR_NUMBER),),
        lambda target, stage: {"amount": "1000.00"},
    ),
    Endpoint(
        "execute_payout",
        "POST",
        APPLICATION + "/payouts",
        "ordered",
        (body("order_id", values=FOR_TEXT), body("value_date", values=FOR_DATE)),
        lambda target, stage: {"order_id": target.order_id, "value_date": TODAY},
    ),
    Endpoint(
        "stop_project",
        "POST",
        APPLICATION + "/stop",
        "funded",
        (body("reason", values=for_choice(*STOP_REASONS)), body("proof", values=FOR_TEXT)),
        lambda target, stage: {"reason": "on_request", "proof": "letter of 2 March 2026"},
    ),
    Endpoint(
        "repay_recovery",
        "POST",
        APPLICATION + "/repayments",
        "recovering",
        (body("amount", values=FOR_NUMBER), body("value_date", values=FOR_DATE)),
        lambda target, stage: {"amount": "1200.00", "value_date": TODAY},
    ),
    Endpoint(
        "execute_refund",
        "POST",
        APPLICATION + "/refunds",
        "stopped",
        (
            body("kind", values=for_choice("own_share_to_enterprise", "subsidy_to_government")),
            body("amount", values=FOR_NUMBER),
            body("value_date", values=FOR_DATE),
        ),
        lambda target, stage: {"kind": "own_share_to_enterprise", "amount": "7000.00", "value_date": TODAY},
    ),
    Endpoint(
        "reverse_event",
        "POST",
        APPLICATION + "/reversals",
        "funded",
        (body("sequence", values=FOR_NUMBER), body("reason", values=FOR_TEXT)),
        lambda target, stage: {"sequence": target.top_up_sequence, "reason": "posted on the wrong wallet"},
    ),
    Endpoint(
        "complete_service",
        "POST",
        APPLICATION + "/completion",
        "confirmed",
        (body("completed_on", values=FOR_DATE),),
        lambda target, stage: {"completed_on": TODAY},
        roles=("back-office", "provider"),
    ),
    Endpoint("run_deadlines", "POST", "/deadlines/run", "nothing"),
    Endpoint(
        "change_contact",
        "PUT",
        "/wallets/{en}/contact",
        "wallet",
        (body("contact_email", values=FOR_TEXT),),
        lambda target, stage: {"contact_email": "boekhouding@peeters.be"},
    ),
    Endpoint(
        "put_provider",
        "PUT",
        "/providers/{provider}",
        "nothing",
        (
            body("name", values=FOR_TEXT),
            body("email", values=FOR_TEXT),
            body("webhook_url", values=FOR_TEXT),
            body("webhook_secret", values=FOR_TEXT),
        ),
        lambda target, stage: {
            "name": "Opleidingen Janssens",
            "email": "aanvragen@janssens.be",
            "webhook_url": "https://janssens.be/kmo/hooks",
            "webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
    ),
    Endpoint("redeliver_notice", "POST", "/notices/{id}/redelivery", "noticed"),
)
READS = (
    Endpoint("get_wallet", "GET", "/wallets/{en}", "ordered", roles=("back-office", "auditor")),
    Endpoint("get_application", "GET", APPLICATION, "ordered", roles=("back-office", "provider", "auditor")),
    Endpoint(
        "list_wallets",
        "GET",
        "/wallets",
        "ordered",
        (query("q"), query("cursor"), query("limit")),
        query={"q": "bakkerij", "cursor": "d2FsbGV0cy1hZnRlcjowMjAyMjM5OTUx", "limit": "20"},  # after 0202239951
        roles=("back-office", "auditor", "reconciler"),
    ),
    Endpoint(
        "list_wallet_events",
        "GET",
        "/wallets/{en}/events",
        "ordered",
        (query("as_of"), query("after"), query("limit")),
        query={"as_of": TODAY, "after": "1", "limit": "100"},
    ),
    Endpoint("replay_wallet", "GET", "/wallets/{en}/state", "ordered", (query("as_of"),), query={"as_of": TODAY}),
    Endpoint("get_audit_trail", "GET", "/wallets/{en}/audit-trail", "ordered", roles=("back-office", "auditor")),
    Endpoint("verify_wallet", "GET", "/wallets/{en}/verification", "ordered", roles=("back-office", "auditor")),
    Endpoint("provider_inbox", "GET", "/providers/{provider}/inbox", "waiting", roles=("back-office", "provider")),
    Endpoint("list_deadlines", "GET", "/deadlines", "ordered", (query("within_days"),), query={"within_days": "3660"}),
    Endpoint(
        "list_payout_orders",
        "GET",
        "/payout-orders",
        "ordered",
        (query("overdue"),),
        query={"overdue": "true"},
        roles=("back-office", "reconciler"),
    ),
    Endpoint(
        "reconciliation_totals",
        "GET",
        "/reconciliation/totals",
        "ordered",
        (query("from"), query("to")),
        query={"from": "2026-03-01", "to": TODAY},
        roles=("back-office", "reconciler"),
    ),
    Endpoint("get_provider", "GET", "/providers/{provider}", "listed"),
    Endpoint(
        "list_notices",
        "GET",
        "/notices",
        "noticed",
        (query("status"), query("cursor"), query("limit")),
        query={"status": "undeliverable", "cursor": "0", "limit": "50"},
    ),
    Endpoint("latest_checkpoint", "GET", "/checkpoints/latest", "checkpointed", roles=("back-office", "auditor")),
    Endpoint("checkpoint_public_key", "GET", "/checkpoints/public-key", "checkpointed", roles=("auditor",)),
    Endpoint(
        "checkpoint_consistency",
        "GET",
        "/checkpoints/consistency",
        "checkpointed",
        (query("from"), query("to")),
        query={"from": "1", "to": "1"},
        roles=("back-office", "auditor"),
    ),
    Endpoint("event_proof", "GET", "/wallets/{en}/events/1/proof", "checkpointed", roles=("back-office", "auditor")),
)
ENDPOINTS = {endpoint.operation: endpoint for endpoint in COMMANDS + READS}


# ----------------------------------------------------------------- the stage

STATES = {
    "waiting": "wallet",  # submitted, awaiting the provider's answer
    "confirmed": "waiting",
    "deposited": "confirmed",  # the own share in
    "funded": "deposited",  # the subsidy in too
    "ordered": "funded",  # a payout order of 4,000.00 open
    "recovering": "ordered",  # paid out, then stopped for another reason: 1,200.00 to recover
    "stopped": "funded",  # stopped on request: 7,000.00 due to the enterprise, 3,000.00 to the government
    "checkpointed": "wallet",  # a wallet, then a signed checkpoint of the ledger-wide tree
    "listed": "nothing",  # the provider in the directory
    "noticed": "waiting",  # the notifier derived the submission's notices; {id} is one of them
}
"""Each state a command acts on, after the state it is reached from."""


class Stage:
    """Wallets in the states the commands act on, each brought there over HTTP as
    the back office and the provider would. One a command was accepted on is
    set up again (on a new wallet) before the next request, so each request
    meets a state in which the command, sent as it should be, succeeds."""

    def __init__(self, api: Api):
        self.api = api
        self._numbers = count(4_031_708)
        self._ready: dict[str, Target] = {}

    def fresh_number(self) -> str:
        """An enterprise number no wallet has yet (mod-97 check digits)."""
        first = next(self._numbers)
        return f"{first:08d}{97 - first % 97:02d}"

    def target(self, state: str) -> Target:
        if state not in self._ready:
            self._ready[state] = self._set_up(state)
        return self._ready[state]

    def used(self, state: str) -> None:
        self._ready.pop(state, None)

    def _set_up(self, state: str) -> Target:
        if state == "nothing":
            return Target(en="no-wallet")
        if state == "wallet":
            en = self.fresh_number()
            self.api.open_wallet(en)
            return Target(en)
        return self._step(state, self._set_up(STATES[state]))

    def _step(self, state: str, target: Target) -> Target:
        """From the state before (:data:`STATES`) to ``state``."""
        if state == "waiting":
            response = self.api.post(f"/wallets/{target.en}/applications", submission(target, self))
            assert response.status_code == 201, response.text
            return Target(target.en, response.json())
        if state == "confirmed":
            self.act(target, "confirmation", as_="provider")
        elif state == "deposited":
            self.act(target, "deposits", Api.deposit_of(target.application, TODAY))
        elif state == "funded":
            self.act(target, "top-ups", {"amount": target.application["subsidy"], "value_date": TODAY})
            events = self.api.get(f"/wallets/{target.en}/events").json()["events"]
            sequence = next(e["sequence"] for e in events if e["type"] == "SubsidyToppedUp")
            return Target(target.en, target.application, top_up_sequence=sequence)
        elif state == "ordered":
            order_id = self.act(target, "payout-orders", {"amount": "4000.00"}).json()["order_id"]
            return Target(target.en, target.application, order_id, target.top_up_sequence)
        elif state == "recovering":
            self.act(target, "payouts", {"order_id": target.order_id, "value_date": TODAY})
            assert self.act(target, "stop", {"reason": "other"}).json()["outcome"] == "recovery_issued"
        elif state == "stopped":
            assert self.act(target, "stop", {"reason": "on_request"}).json()["outcome"] == "stopped"
        elif state == "listed":
            entry = {"name": "Opleidingen Janssens", "email": "aanvragen@janssens.be"}
            response = self.api.client.put(f"/v1/providers/{TRAINER}", json=entry, headers=Api.headers("back-office"))
            assert response.status_code == 200, response.text
        elif state == "noticed":
            notifier = self.api.client.app.state.notices.notifier
            notifier.run_pass()
            notices = notifier.store.page(None, None, 500)[0]
            notice = next(n for n in notices if n["enterprise_number"] == target.en)
            return Target(target.en, {"application_id": notice["id"]})  # the notice's id fills {id}
        elif state == "checkpointed":
            app = self.api.client.app.state
            take_checkpoint(app.ledger, signing_key(app.checkpoint_key))
        return target

    def act(self, target: Target, action: str, body: Any = None, as_: str = "back-office") -> httpx.Response:
        path = f"/wallets/{target.en}/applications/{target.application_id}/{action}"
        response = self.api.post(path, body, as_=as_)
        assert response.status_code in (200, 201), (path, response.text)
        return response


# ----------------------------------------------------------------- requests


def as_text(value: Any) -> str:
    """A generated value as it reads in a URL or header."""
    if isinstance(value, str):
        return value
    if isinstance(value, (JsonText, Encoded)):
        return value.text
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


def to_json(document: Any) -> bytes:
    """The body as JSON: lone surrogates as escapes, NaN and infinities as Python
    writes them, a :class:`JsonText` as its own text, what is MISSING left out."""
    numbers: dict[str, str] = {}

    def hold(value: Any) -> Any:
        if isinstance(value, JsonText):
            token = f"json-number-{uuid.uuid4().hex}"
            numbers[f'"{token}"'] = value.text
            return token
        if isinstance(value, dict):
            return {key: hold(item) for key, item in value.items() if item is not MISSING}
        if isinstance(value, list):
            return [hold(item) for item in value if item is not MISSING]
        return value

    text = json.dumps(hold(document))
    for token, number in numbers.items():
        text = text.replace(token, number)
    return text.encode()


def put(document: dict, where: tuple[str | int, ...], value: Any) -> None:
    *parents, last = where
    for part in parents:
        document = document[part]
    document[last] = value


def take(document: Any, where: tuple[str | int, ...]) -> Any:
    for part in where:
        document = document[part]
    return document


@dataclass
class Request:
    method: str
    path: str
    role: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, Any]
    body: dict[str, Any] | None

    def url(self) -> str:
        return "/v1" + self.path.format(**self.params)

    def content(self) -> bytes | None:
        return None if self.body is None or self.body is MISSING else to_json(self.body)

    def describe(self) -> str:
        content = self.content()
        shown = "" if content is None else shortened(content.decode())
        return (
            f"{self.method} {self.url()} as {self.role}\n"
            f"  query: {self.query!r}\n  headers: {self.headers!r}\n  body: {shown}"
        )


def shortened(text: str, keep: int = 3000) -> str:
    return text if len(text) <= keep else text[:keep] + f"... ({len(text)} characters)"


def valid_request(endpoint: Endpoint, target: Target, stage: Stage, role: str) -> Request:
    """The request the caller would send."""
    return Request(
        endpoint.method,
        endpoint.path,
        role,
        {"en": target.en, "id": target.application_id, "provider": TRAINER},
        dict(endpoint.query),
        {"Idempotency-Key": str(uuid.uuid4())} if endpoint.method == "POST" else {},
        None if endpoint.body is None else copy.deepcopy(endpoint.body(target, stage)),
    )


def with_value(request: Request, where: Field, value: Any) -> Request:
    """``request`` with ``value`` in the one field ``where``."""
    section, *rest = where.where
    if section == "body" and not rest:
        request.body = value
        return request
    if section == "body" and rest == [UNKNOWN]:
        name, value = value
        request.body[name] = value
        return request
    if isinstance(value, (Spliced, Respelt)):
        valid = {
            "path": lambda: request.params[rest[0]],
            "query": lambda: request.query[rest[0]],
            "header": lambda: request.headers.get(rest[0]) or '"1"',
            "body": lambda: take(request.body, tuple(rest)),
        }[section]()
        value = value(valid)
    if section == "body":
        put(request.body, tuple(rest), value)
    elif section == "path":
        request.params[rest[0]] = value.text if isinstance(value, Encoded) else quote(as_text(value), safe="")
    elif section == "query":
        request.query[rest[0]] = value if value is MISSING else as_text(value)
    else:  # a header as a server passes it on: Latin-1, no line breaks
        header = as_text(value).encode("latin-1", "backslashreplace").replace(b"\r", b"").replace(b"\n", b"")
        request.headers[rest[0]] = value if value is MISSING else header
    return request


def send(api: Api, request: Request) -> httpx.Response:
    headers = Api.headers(request.role) | present(request.headers)
    if request.body is not None:
        headers["Content-Type"] = "application/json"
    return api.client.request(
        request.method, request.url(), params=present(request.query), headers=headers, content=request.content()
    )


def present(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not MISSING}


def assert_answered(request: Request, response: httpx.Response) -> None:
    """2xx, or a problem: a 4xx in ``application/problem+json`` with its ``code``."""
    answer = f"{response.status_code} {response.headers.get('content-type')}: {response.text[:2000]}"
    said = f"{request.describe()}\n  -> {answer}"
    note(said)
    assert response.status_code < 500, said
    assert "Traceback" not in response.text, said
    if response.is_success:
        return
    assert 400 <= response.status_code < 500, said
    assert response.headers.get("content-type") == "application/problem+json", said
    problem = response.json()
    assert isinstance(problem.get("code"), str) and problem["code"], said
    assert problem["status"] == response.status_code, said


CROSS_WALLET_READS = (
    ("/deadlines", {"within_days": "3660"}, "auditor"),
    ("/payout-orders", {}, "back-office"),
    ("/payout-orders", {"overdue": "true"}, "reconciler"),
    (f"/providers/{TRAINER}/inbox", {}, "provider"),
    ("/reconciliation/totals", {}, "reconciler"),
)


def assert_in_audit_trail(api: Api, en: str) -> None:
    """The wallet's latest event is in its audit trail, a read model."""
    wallet = api.get(f"/wallets/{en}")
    trail = api.get(f"/wallets/{en}/audit-trail", as_="auditor")
    assert (wallet.status_code, trail.status_code) == (200, 200), (en, wallet.text, trail.text)
    assert trail.json()["rows"][-1]["sequence"] == wallet.json()["version"], (en, trail.text)


def assert_cross_wallet_reads_answer(api: Api) -> None:
    for path, params, role in CROSS_WALLET_READS:
        response = api.get(path, as_=role, **params)
        assert response.status_code == 200, (path, role, response.text)


# ----------------------------------------------------------------- the app


@contextmanager
def running(database_url: str, keys_file: Path) -> Iterator[Api]:
    """The app on ``database_url``; a server error comes back as the 500 a
    client would see (its trace goes to the log), not as an exception."""
    app = create_app(Settings(database_url=database_url, api_keys_file=keys_file))
    with TestClient(app, raise_server_exceptions=False) as client:
        client.event_hooks["response"].append(hold_to_response_model)
        yield Api(client)


@pytest.fixture
def tools(monkeypatch, capsys, postgres_url: str) -> Tools:
    return Tools(monkeypatch, capsys, postgres_url)


def assert_ledger_sound(api: Api) -> None:
    """The read models catch up to the last event, every read across wallets
    answers and the deadline run goes through."""
    models = api.client.app.state.read_models
    last = api.client.app.state.ledger.recorder.max_notification_id() or 0
    assert models.projector.catch_up() == last
    assert_cross_wallet_reads_answer(api)
    run = api.post("/deadlines/run", None, Idempotency_Key=str(uuid.uuid4()))
    assert run.status_code == 200, run.text


def assert_verify_passes(tools: Tools) -> None:
    outcome = tools.run(verify.main, "--json")
    assert outcome.code == 0, (outcome.out, outcome.err)
    report = json.loads(outcome.out)
    assert report["ok"] and report["problems"] == [], report
    assert report["projections"]["checked"] and report["projections"]["differences"] == [], report["projections"]


# ----------------------------------------------------------------- the tests


def test_every_operation_of_the_api_is_fuzzed():
    assert set(ENDPOINTS) == OPERATION_IDS


def test_each_request_the_fuzz_starts_from_is_accepted_as_it_is(postgres_url, keys_file, tools):
    """The guard on the fuzz below: left as the caller would send it, each
    request is accepted, so what a refusal is about is the generated value."""
    with running(postgres_url, keys_file) as api, freeze_time(NOW, **CLOCK):
        stage = Stage(api)
        for endpoint in ENDPOINTS.values():
            for role in endpoint.roles:
                response = send(api, valid_request(endpoint, stage.target(endpoint.needs), stage, role))
                assert response.is_success, (endpoint.operation, role, response.text)
                if endpoint.method == "POST":
                    stage.used(endpoint.needs)
        assert_ledger_sound(api)
    assert_verify_passes(tools)


@pytest.mark.parametrize("endpoint", ENDPOINTS.values(), ids=ENDPOINTS)
def test_a_generated_value_in_any_field_is_answered_and_leaves_the_read_models_and_verify_sound(
    postgres_url, keys_file, tools, endpoint: Endpoint
):
    """Never a 5xx, an accepted value at once in the read models, and at the end
    the read models caught up, the reads across wallets answering and verify
    passing, on a schema of its own per operation."""
    with running(postgres_url, keys_file) as api, freeze_time(NOW, **CLOCK):
        stage = Stage(api)
        for where in endpoint.all_fields():
            fuzz(api, stage, endpoint, where)
        assert_ledger_sound(api)
    assert_verify_passes(tools)


def fuzz(api: Api, stage: Stage, endpoint: Endpoint, where: Field) -> None:
    """One request per generated value in ``where`` (its examples first), each
    answered 2xx or with a problem; the failing one is shown with its answer."""

    def one_request(where: Field, value: Any, role: str) -> None:
        note(f"{endpoint.operation}: {where!r} = {shortened(repr(value))}, as {role}")
        target = stage.target(endpoint.needs)
        request = with_value(valid_request(endpoint, target, stage, role), where, value)
        response = send(api, request)
        assert_answered(request, response)
        if response.is_success and endpoint.method == "POST":
            accepted(api, stage, endpoint, target, response.json())

    test = given(where=st.just(where), value=where.values, role=st.sampled_from(endpoint.roles))(one_request)
    for value in where.examples:
        test = example(where=where, value=value, role=endpoint.roles[-1])(test)
    fuzzing = settings(max_examples=EXAMPLES_PER_FIELD, deadline=None, database=None, suppress_health_check=UNCHECKED)
    fuzzing(test)()


def accepted(api: Api, stage: Stage, endpoint: Endpoint, target: Target, answer: dict) -> None:
    """A command took the generated value: its event is in the read models at once
    (reading them catches them up, or answers 503 when they are stuck); the state
    it acted on is set up again for the next request."""
    stage.used(endpoint.needs)
    if endpoint.operation == "open_wallet":
        assert_in_audit_trail(api, answer["enterprise_number"])
    elif endpoint.needs != "nothing":  # not the deadline run, which acts on no one wallet
        assert_in_audit_trail(api, target.en)
