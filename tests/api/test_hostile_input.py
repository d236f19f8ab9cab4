"""Hostile input and trusted state: text that would poison a store or an
operator's terminal, and money spelt otherwise than API.md says, is a 422
``validation_error`` naming the field, and records nothing; the cross-wallet
reads keep answering (a NUL in PostgreSQL's read models broke them for good);
and what older events hold is escaped when the command line prints it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from freezegun import freeze_time

from ledger.domain import commands as c
from scripts import replay
from tests.api.conftest import Api
from tests.conftest import BACK_OFFICE, ENTERPRISE, OTHER_ENTERPRISE, PROVIDER_ACTOR, TRAINER, sme, training
from tests.tools.helpers import Tools

CROSS_WALLET_READS = ["/deadlines", "/payout-orders", f"/providers/{TRAINER}/inbox", "/reconciliation/totals"]


@dataclass
class Wallet:
    """A wallet with an application awaiting the provider's answer, one
    confirmed and one funded with a payout order: every text field has a
    command it would be recorded by."""

    api: Api
    waiting: dict
    confirmed: dict
    funded: dict
    order_id: str

    def state(self) -> tuple[int, list[dict]]:
        version = self.api.get(f"/wallets/{ENTERPRISE}").json()["version"]
        return version, self.api.get(f"/wallets/{ENTERPRISE}/events").json()["events"]


@pytest.fixture
def wallet(api_on_every_store: Api) -> Iterator[Wallet]:
    api = api_on_every_store
    with freeze_time("2026-03-02 09:00:00"):
        api.open_wallet()
        waiting = api.submit(date(2026, 3, 16))
        confirmed = api.submit(date(2026, 3, 18), fee="2000.00")
        assert api.act(confirmed, "confirmation", as_="provider").status_code == 200
        funded = api.submit(date(2026, 3, 20))
        api.fund(funded, date(2026, 3, 2))
        ordered = api.act(funded, "payout-orders", {"amount": "1000.00"})
        assert ordered.status_code == 201, ordered.text
        yield Wallet(api, waiting, confirmed, funded, ordered.json()["order_id"])


def open_wallet(w: Wallet, text: str) -> Any:
    return w.api.post("/wallets", {"enterprise_number": OTHER_ENTERPRISE, "name": text, "sme": sme()})


def open_wallet_numbered(w: Wallet, text: str) -> Any:
    return w.api.post("/wallets", {"enterprise_number": text, "name": "Bakkerij Janssens", "sme": sme()})


def submit(w: Wallet, text: str) -> Any:
    return w.api.post(f"/wallets/{ENTERPRISE}/applications", training(date(2026, 3, 21), provider=text))


def refuse(w: Wallet, text: str) -> Any:
    return w.api.act(w.waiting, "refusal", {"reason": text}, as_="provider")


def deposit(w: Wallet, text: str) -> Any:
    body = Api.deposit_of(w.confirmed, "2026-03-02")
    return w.api.act(w.confirmed, "deposits", body | {"payment_reference": body["payment_reference"] + text})


def pay(w: Wallet, text: str) -> Any:
    return w.api.act(w.funded, "payouts", {"order_id": w.order_id + text, "value_date": "2026-03-02"})


def stop(w: Wallet, text: str) -> Any:
    return w.api.act(w.waiting, "stop", {"reason": "other", "proof": text})


def reverse(w: Wallet, text: str) -> Any:
    top_up = next(e for e in w.state()[1] if e["type"] == "SubsidyToppedUp")
    return w.api.act(w.funded, "reversals", {"sequence": top_up["sequence"], "reason": text})


TEXT_FIELDS: dict[str, tuple[Callable[[Wallet, str], Any], str]] = {
    "wallet name": (open_wallet, "name"),
    "enterprise number": (open_wallet_numbered, "enterprise_number"),
    "provider number": (submit, "provider"),
    "refusal reason": (refuse, "reason"),
    "payment reference": (deposit, "payment_reference"),
    "payout order id": (pay, "order_id"),
    "stop proof": (stop, "proof"),
    "reversal reason": (reverse, "reason"),
}

HOSTILE = {
    "NUL": ("Bakkerij\u0000", "control characters are not allowed (U+0000)"),
    "escape sequence": ("\u001b[31mBakkerij", "control characters are not allowed (U+001B)"),
    "right-to-left override": ("Bakkerij\u202etxt.exe", "bidirectional formatting characters are not allowed (U+202E)"),
}


def assert_refused_and_nothing_recorded(w: Wallet, send: Callable[[], Any], field: str, message: str) -> None:
    before = w.state()
    response = send()
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_error" and body["type"] == "urn:kmo-ledger:problem:validation_error"
    assert body["errors"] == [{"location": f"body.{field}", "message": message}]
    assert body["detail"] == f"body.{field}: {message}"
    assert w.state() == before
    assert w.api.get(f"/wallets/{OTHER_ENTERPRISE}").status_code == 404


def assert_cross_wallet_reads_answer(w: Wallet) -> None:
    for path in CROSS_WALLET_READS:
        response = w.api.get(path)
        assert response.status_code == 200, (path, response.text)


# ------------------------------------------------------------------------- text


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("kind", TEXT_FIELDS)
def test_every_text_field_refuses_nul_control_and_bidi_characters_and_records_nothing(wallet, kind, hostile):
    send, field = TEXT_FIELDS[kind]
    text, message = HOSTILE[hostile]
    with freeze_time("2026-03-02 10:00:00"):
        assert_refused_and_nothing_recorded(wallet, lambda: send(wallet, text), field, message)
        assert_cross_wallet_reads_answer(wallet)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("   ", "must not be blank"),
        ("\u00a0\u200b", "must not be blank"),
        ("Bakkerij\tPeeters", "line breaks and tabs are not allowed (U+0009)"),
        ("Bakkerij\nPeeters", "line breaks and tabs are not allowed (U+000A)"),
        ("Bakkerij\u009b31m", "control characters are not allowed (U+009B)"),
        ("\u2066Bakkerij\u2069", "bidirectional formatting characters are not allowed (U+2066)"),
        ("Bakkerij\u200f", "bidirectional formatting characters are not allowed (U+200F)"),
        ("Bakkerij\u2028Peeters", "line and paragraph separators are not allowed (U+2028)"),
    ],
)
def test_a_wallet_name_is_one_line_that_says_something(wallet, name, message):
    with freeze_time("2026-03-02 10:00:00"):
        assert_refused_and_nothing_recorded(wallet, lambda: open_wallet(wallet, name), "name", message)
        assert_cross_wallet_reads_answer(wallet)


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("  \n\t", "must not be blank"),
        ("related\r\nparties", "carriage returns are not allowed (U+000D)"),
        ("related\u0007parties", "control characters are not allowed (U+0007)"),
    ],
)
def test_a_reason_may_span_lines_but_holds_no_other_control_character(wallet, reason, message):
    with freeze_time("2026-03-02 10:00:00"):
        assert_refused_and_nothing_recorded(wallet, lambda: refuse(wallet, reason), "reason", message)
        refused = refuse(wallet, "related parties:\n\tthe trainer is the owner's brother")
        assert refused.status_code == 200, refused.text
        assert_cross_wallet_reads_answer(wallet)


@pytest.mark.parametrize("role", ["back-office", "provider"])
@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/wallets/{en}/applications/{id}%1B%5B2J", "id"),
        ("/wallets/{en}/applications/{id}%E2%80%AE/confirmation", "id"),
        ("/providers/{provider}%00/inbox", "provider"),
    ],
    ids=["application-read", "application-command", "inbox"],
)
def test_a_path_parameter_follows_the_text_rule_and_is_never_echoed(wallet, role, path, parameter):
    url = "/v1" + path.format(en=ENTERPRISE, id=wallet.waiting["application_id"], provider=TRAINER)
    method = wallet.api.client.post if url.endswith("/confirmation") else wallet.api.client.get
    with freeze_time("2026-03-02 10:00:00"):
        before = wallet.state()
        response = method(url, headers=Api.headers(role))
        assert wallet.state() == before
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["location"] == f"path.{parameter}" and error["message"].endswith(")")
    assert not any(char in response.json()["detail"] for char in "\u001b\u202e\u0000")


# ------------------------------------------------------------------------ money

SPELLING = 'a euro amount is a JSON string of digits with at most two decimals ("2500.00") or a JSON number'
AMOUNTS = {
    # spelt otherwise than API.md says: refused, and then the same order spelt right is recorded
    "underscore": ("1_000", SPELLING, "1000", "1000.00"),
    "arabic-indic digits": ("\u0661\u0660\u0660\u0660", SPELLING, 1000, "1000.00"),
    "full-width digits": ("\uff11\uff10\uff10\uff10", SPELLING, "1000.5", "1000.50"),
    "exponent": ("1e3", SPELLING, 1000.5, "1000.50"),
    "plus sign": ("+1000", SPELLING, "1000.50", "1000.50"),
    "four decimals": ("1000.0000", "at most two decimals (cents) are allowed", "1000", "1000.00"),
}


@pytest.mark.parametrize(("misspelt", "message", "spelt_right", "recorded"), AMOUNTS.values(), ids=AMOUNTS)
def test_money_is_ascii_digits_with_up_to_two_decimals_or_a_json_number(
    wallet, misspelt, message, spelt_right, recorded
):
    """API.md: a JSON string with at most two decimals, or a JSON number; anything
    else (signs, exponents, underscores, digits of other scripts, more decimals,
    even zeros) is a 422 that records nothing."""
    with freeze_time("2026-03-02 10:00:00"):
        order = lambda amount: wallet.api.act(wallet.funded, "payout-orders", {"amount": amount})
        assert_refused_and_nothing_recorded(wallet, lambda: order(misspelt), "amount", message)
        response = order(spelt_right)
    assert response.status_code == 201, response.text
    assert [o["amount"] for o in response.json()["application"]["payout_orders"]] == ["1000.00", recorded]


@pytest.mark.parametrize(
    ("path", "body", "location"),
    [
        ("/wallets", {"enterprise_number": OTHER_ENTERPRISE, "name": "x", "sme": sme(turnover="1e6")}, "sme.turnover"),
        (
            f"/wallets/{ENTERPRISE}/applications",
            training(date(2026, 3, 21), cost_lines=[{"kind": "fee", "amount": "\uff11\uff10\uff10\uff10"}]),
            "cost_lines.0.amount",
        ),
    ],
    ids=["sme-turnover", "cost-line"],
)
def test_a_misspelt_amount_is_refused_wherever_money_is_asked(wallet, path, body, location):
    with freeze_time("2026-03-02 10:00:00"):
        assert_refused_and_nothing_recorded(wallet, lambda: wallet.api.post(path, body), location, SPELLING)


# ---------------------------------------------------------- the command line


def test_replay_escapes_the_control_characters_an_older_event_holds(ledger, monkeypatch, capsys, database_url):
    """Events recorded before the text rule may hold anything; the human
    timeline shows each unprintable character as its escape."""
    name = "Bakkerij \u001b[31mPeeters\u202e"
    reason = "related\u001b]0;owned\u0007 parties"
    with freeze_time("2026-03-02 09:00:00"):
        opening = c.OpenWallet(enterprise_number=ENTERPRISE, name="x", sme=sme()).model_copy(update={"name": name})
        ledger.open_wallet(opening, BACK_OFFICE)  # as it was recorded before the rule
        submission = c.SubmitApplication(**training(date(2026, 3, 16)))
        _wallet, application_id = ledger.submit_application(ENTERPRISE, submission, BACK_OFFICE)
        refusal = c.RefuseApplication(reason="x").model_copy(update={"reason": reason})
        ledger.handle(ENTERPRISE, application_id, refusal, PROVIDER_ACTOR)

    outcome = Tools(monkeypatch, capsys, database_url).run(replay.main, ENTERPRISE, "--as-of", "2026-03-03")

    assert outcome.code == 0, outcome.err
    assert not any(char in outcome.out for char in "\u001b\u0007\u202e")
    assert f"Wallet {ENTERPRISE} (Bakkerij \\x1b[31mPeeters\\u202e) as of 2026-03-03" in outcome.out
    assert "related\\x1b]0;owned\\x07 parties" in outcome.out
