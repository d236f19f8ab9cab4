"""A wallet's stored rows screened on plain data: verification's fast path.

:func:`ledger.audit.verification.check_rows` reads every stored event through
its pydantic model and folds it through the one fold: about 30 µs an event,
most of it validation. Verifying a ledger of millions of events that way takes
many minutes, though nearly every wallet is sound. :func:`screen` decides, on
the decoded JSON alone, that a wallet's rows would give no finding there, in a
few microseconds an event; a wallet it cannot vouch for is verified the full
way, which names what is wrong. So a finding is never missed and always worded
the same; the screen only has to be strict, never exact.

It vouches for a wallet only when every row

- reads as its event would (:data:`READABLE`): exactly the fields its type
  may have, every required one, each in the form pydantic takes or a
  stricter one (canonical ISO dates and timestamps, ``"-12.34"`` euro
  amounts, strings, integers, known literals, nested objects with no extra
  field); a model that validates itself (a wallet's figures) is asked;
- is of a type the screen folds: everything but recoveries, refunds and
  reversals (rare, and left to the full check);

and when, as :func:`~ledger.audit.verification.check_invariants` judges it,
no application's events go back in business date, the wallet opens with its
first event of the fold and never again, every application event names a
submitted application (and every payout or cancellation a placed order), and
after each event its legs sum to zero, no held balance is negative, the money
at the financial manager equals what moved in, payouts stay within the
project, and granted subsidy stays within the year's ceilings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from functools import lru_cache
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin
from uuid import UUID

from pydantic import BaseModel, BeforeValidator

from ledger.domain import events as ev
from ledger.domain.money import cents_from_stored
from ledger.domain.state import AT_FINANCIAL_MANAGER

ENDINGS = frozenset(ev.ENDINGS)
RECEIPTS = frozenset({"OwnShareDeposited", "SubsidyToppedUp", "PayoutExecuted"})
WITHOUT_MONEY = frozenset({"SmeFiguresFiled", "ContactEmailChanged", "ApplicationConfirmed", "ServiceCompleted"})
POSTING = ENDINGS | RECEIPTS
"""The event types whose legs the fold posts to the application's balances."""
SCREENED = ENDINGS | RECEIPTS | WITHOUT_MONEY | {"WalletOpened", "ApplicationSubmitted", "PayoutOrdered"}
"""The event types the screen folds; a wallet with any other is checked the full way."""
_DAY = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\Z", re.ASCII)
_EURO = re.compile(r"-?\d{1,15}\.\d\d\Z", re.ASCII)
_HELD = frozenset(AT_FINANCIAL_MANAGER)


def cents(value: Any) -> int:
    """A readable stored amount (:data:`READABLE`) in cents: an int, or a euro string in its stored form."""
    return value if type(value) is int else int(value.replace(".", "", 1))


@lru_cache(maxsize=100_000)
def _is_day(text: str) -> bool:
    """A ledger's events share few days: each is judged once."""
    if not _DAY.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:  # 2026-02-31
        return False
    return True


# ------------------------------------------------------------------ readable: what pydantic would accept
#
# Each model's check is written out as Python source once, at import: a check
# per field, inlined (``type(x) is str``), costs a tenth of calling a function
# per field, and a million events are checked field by field.


def _is_timestamp(value: Any) -> bool:
    """A UTC timestamp as events store it (``2026-12-07T12:41:19.515568Z``, or
    without the fraction), which pydantic reads: the separators where they must
    be, and ``datetime.fromisoformat`` (which takes ASCII digits only) reading the rest."""
    if type(value) is not str or len(value) not in (20, 27) or value[-1] != "Z" or value[10] != "T":
        return False
    if value[4] != "-" or value[7] != "-" or value[13] != ":" or value[16] != ":" or value[19] not in ".Z":
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


class _Source:
    """The source of the checks of a model and the models it holds, and the names they use."""

    def __init__(self) -> None:
        self.functions: list[str] = []
        self.names: dict[str, Any] = {"is_day": _is_day, "is_timestamp": _is_timestamp, "euro": _EURO.match}
        self.checks: dict[type[BaseModel], str | None] = {}

    def constant(self, value: Any) -> str:
        name = f"C{len(self.names)}"
        self.names[name] = value
        return name

    def field(self, annotation: Any, metadata: Sequence[Any], x: str) -> str | None:
        """An expression true when ``x`` is as pydantic would accept it (or stricter); None: no plain check."""
        if metadata:
            cents = annotation is int and any(
                isinstance(m, BeforeValidator) and m.func is cents_from_stored for m in metadata
            )
            return f"(type({x}) is int or (type({x}) is str and euro({x}) is not None))" if cents else None
        plain = {
            str: f"type({x}) is str",
            int: f"type({x}) is int",
            bool: f"type({x}) is bool",
            date: f"(type({x}) is str and is_day({x}))",
            datetime: f"is_timestamp({x})",
        }
        if annotation in plain:
            return plain[annotation]
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is Literal:
            return f"(type({x}) is str and {x} in {self.constant(frozenset(args))})"
        if origin in (Union, UnionType) and len(args) == 2 and type(None) in args:
            inner = self.field(next(a for a in args if a is not type(None)), (), x)
            return None if inner is None else f"({x} is None or {inner})"
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            if isinstance(args[0], type) and issubclass(args[0], BaseModel):  # legs, costs: a function per item
                function = self.model(args[0])
                return None if function is None else f"(type({x}) is list and all(map({function}, {x})))"
            item = self.field(args[0], (), x + "_")
            return None if item is None else f"(type({x}) is list and all({item} for {x}_ in {x}))"
        if origin is dict and args == (str, Any):
            return f"type({x}) is dict"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            function = self.model(annotation)
            return None if function is None else f"{function}({x})"
        return None

    def model(self, model: type[BaseModel], leave_out: frozenset[str] = frozenset()) -> str | None:
        """The name of the function checking a dict as ``model`` (stricter where
        simpler: no extra field at all); None when a field has no plain check or
        the model validates itself."""
        if model in self.checks and not leave_out:
            return self.checks[model]
        decorators = model.__pydantic_decorators__
        if decorators.field_validators or decorators.model_validators or decorators.validators:
            return None
        fields = {n: f for n, f in model.model_fields.items() if n not in leave_out}
        lines = []
        for name, info in fields.items():
            test = self.field(info.annotation, info.metadata, "x")
            if test is None:
                self.checks[model] = None
                return None
            if info.is_required():  # present: the keys were checked first
                lines.append(f"    x = v[{name!r}]\n    if not {test}: return False")
            else:
                lines.append(f"    if {name!r} in v:\n        x = v[{name!r}]\n        if not {test}: return False")
        function = f"check_{model.__name__}_{len(self.functions)}"
        allowed = self.constant(frozenset(fields))
        required = self.constant(frozenset(n for n, f in fields.items() if f.is_required()))
        self.functions.append(
            f"def {function}(v):\n    if type(v) is not dict: return False\n    keys = v.keys()\n"
            f"    if not (keys <= {allowed} and {required} <= keys): return False\n"
            + "\n".join(lines)
            + "\n    return True\n"
        )
        if not leave_out:
            self.checks[model] = function
        return function


_PROBE_ID = UUID(int=0)


def _validated_by(model: type[BaseModel]) -> Callable[[dict], bool]:
    """The model's own validation, for the rare events the screen has no plain check of (a wallet's figures)."""

    def readable(state: dict) -> bool:
        try:
            model.model_validate(state | {"originator_id": _PROBE_ID, "originator_version": 1})
        except Exception:  # as check_rows: whatever a validator raises, the row cannot be read
            return False
        return True

    return readable


def _readable() -> dict[str, Callable[[dict], bool]]:
    source = _Source()
    named = {
        name: source.model(model, frozenset({"originator_id", "originator_version"}))
        for name, model in ev.EVENT_TYPES.items()
    }
    scope = dict(source.names)
    exec("\n".join(source.functions), scope)  # noqa: S102 - our own source, written above from the models
    return {
        name: scope[function] if function else _validated_by(ev.EVENT_TYPES[name]) for name, function in named.items()
    }


READABLE = _readable()
"""Event type -> whether a stored row of it reads as the event (what ``check_rows`` would validate)."""


class _Application:
    __slots__ = ("year", "project_amount", "paid_out", "held", "outside", "keys", "orders")

    def __init__(self, year: int, project_amount: int, keys: tuple[str, ...]):
        self.year, self.project_amount, self.keys = year, project_amount, keys
        self.paid_out = 0
        self.held: dict[str, int] = {}
        """The legs posted to the financial manager's accounts, per account."""
        self.outside = 0
        """The money moved in: minus the legs to every other account."""
        self.orders: set[str] = set()


def screen(rows: list[tuple[int, str, dict[str, Any]]]) -> bool:
    """Whether a wallet's stored rows (version, type, state; their chain already
    checked) are sound on every point of the full check; False: check it the full way."""
    try:
        return _sound(rows)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def _sound(rows: list[tuple[int, str, dict[str, Any]]]) -> bool:
    latest: dict[str, str] = {}
    dated = []
    previous, in_order = "", True
    for _version, type_name, state in rows:
        if type_name not in SCREENED:
            return False
        if not READABLE[type_name](state):
            return False
        day = state["business_date"]
        application_id = state.get("application_id")
        if application_id is not None:
            if day < latest.get(application_id, day):
                return False  # dated back: the full check replays every date
            latest[application_id] = day
        if day < previous:
            in_order = False
        previous = day
        dated.append((day, type_name, state))
    if not in_order:
        dated.sort(key=lambda row: row[0])  # stable: stored order within a day
    if not dated or dated[0][1] != "WalletOpened":
        return False
    applications: dict[str, _Application] = {}
    ceilings: dict[int, dict[str, list[int]]] = {}  # year -> key -> [ceiling, claimed]
    held_accounts = _HELD
    for _on, type_name, state in dated[1:]:
        if type_name == "WalletOpened":
            return False  # opened twice
        if type_name == "ApplicationSubmitted":
            if state["application_id"] in applications:
                return False  # submitted twice
            application = _submitted(state, applications, ceilings)
        elif "application_id" not in state:
            continue  # figures filed, a contact changed: no money, no application
        else:
            found = applications.get(state["application_id"])
            if found is None or not _applied(type_name, state, found, ceilings):
                return False
            application = found
        legs = state.get("legs")
        if legs:
            total, held, posts = 0, application.held, type_name in POSTING
            for leg in legs:  # readable: a list of legs of known accounts and amounts
                account, amount = leg["account"], leg["amount"]
                if type(amount) is str:
                    amount = int(amount.replace(".", "", 1))
                total += amount
                if account in held_accounts:
                    if posts:
                        held[account] = held.get(account, 0) + amount
                else:
                    application.outside -= amount
            if total:
                return False
        # the invariants after the event, as the full check judges them
        at_manager = 0
        for amount in application.held.values():
            if amount < 0:
                return False
            at_manager += amount
        if at_manager != application.outside or application.paid_out > application.project_amount:
            return False
        for ceiling, claimed in ceilings[application.year].values():
            if claimed > ceiling:
                return False
    return True


def _submitted(
    state: dict[str, Any], applications: dict[str, _Application], ceilings: dict[int, dict[str, list[int]]]
) -> _Application:
    year, subsidy = state["year"], cents(state["subsidy"])
    of_year = ceilings.setdefault(year, {})
    for figure in state["ceilings"]:
        of_year.setdefault(figure["key"], [cents(figure["ceiling"]), 0])[1] += subsidy
    keys = tuple(figure["key"] for figure in state["ceilings"])
    application = _Application(year, cents(state["own_share"]) + subsidy, keys)
    applications[state["application_id"]] = application
    return application


def _applied(
    type_name: str, state: dict[str, Any], application: _Application, ceilings: dict[int, dict[str, list[int]]]
) -> bool:
    """An event of an existing application folded in (but its legs); False where the fold would fail."""
    if type_name == "PayoutOrdered":
        application.orders.add(state["order_id"])
    elif type_name == "PayoutExecuted":
        if state["order_id"] not in application.orders:
            return False
        application.paid_out += cents(state["own_share_part"]) + cents(state["subsidy_part"])
    elif type_name in ENDINGS:
        if not application.orders.issuperset(state.get("cancelled_orders", ())):
            return False
        freed = cents(state.get("ceiling_freed", 0))
        if freed > 0:
            of_year = ceilings[application.year]
            for key in application.keys:
                of_year[key][1] -= freed
    return True  # the rest counts nothing the invariants read
