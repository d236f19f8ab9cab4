"""The console without a browser: its headers, its session cookie, what each
role sees, escaping, errors as pages, paging and the formats an auditor reads."""

from __future__ import annotations

import json
import re
import stat
from datetime import date

import orjson
import pytest
from freezegun import freeze_time
from itsdangerous import URLSafeTimedSerializer

from api.console import charts, formatting
from api.console import wallet as wallet_page
from api.console.session import COOKIE, SECRET_FILE, console_secret
from api.console.wallet import PAGE
from api.settings import Settings, SettingsError
from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain.identifiers import wallet_id
from tests.api.conftest import KEYS, key_id_of
from tests.conftest import BACK_OFFICE, ENTERPRISE, OTHER_ENTERPRISE, sme
from tests.console.conftest import ORIGIN, SCRIPT_NAME, TAMPERED, Console
from tests.tools.helpers import StoredEvents

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
WALLET = f"/console/wallets/{ENTERPRISE}"


def assert_guarded(answer) -> None:
    assert answer.headers["content-security-policy"] == POLICY
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_every_console_answer_forbids_inline_script_and_framing(console: Console):
    answers = [console.get("/console/sign-in"), console.get("/console/static/console.css"), console.get(WALLET)]
    assert answers[2].status_code == 200 and answers[2].url.path == "/console/sign-in"  # no session yet
    console.sign_in("auditor")
    answers += [console.get(WALLET), console.get("/console/no-such-page"), console.get(WALLET, as_of="31/02/2026")]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 404, 422]
    for answer in answers:
        assert_guarded(answer)
    for answer in (answers[0], answers[3]):
        assert (
            "<script" not in answer.text.lower() and " style=" not in answer.text and "on" + "click" not in answer.text
        )
    assert console.client.get("/v1/wallets").headers.get("x-frame-options") is None  # the API's answers are untouched


def test_the_session_cookie_names_the_key_never_holds_it_and_expires(console: Console):
    answer = console.client.post(
        "/console/sign-in", data={"key": KEYS["auditor"]}, headers={"Origin": ORIGIN}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    cookie = answer.headers["set-cookie"]
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in flags and flags["samesite"].lower() == "samesite=strict"
    assert flags["path"] == "Path=/console" and flags["max-age"] == "Max-Age=28800"
    value = cookie.split(";")[0].split("=", 1)[1]
    assert KEYS["auditor"] not in value
    payload = URLSafeTimedSerializer("any").loads_unsafe(value)[1]
    assert payload == {"key_id": key_id_of("auditor"), "role": "auditor", "provider": None}


def test_a_forged_or_foreign_session_is_no_session(console: Console):
    forged = URLSafeTimedSerializer("not the server's secret", salt="kmo-ledger console session")
    console.client.cookies.set(COOKIE, forged.dumps({"key_id": key_id_of("back-office"), "role": "back-office"}))
    assert console.get("/console/wallets").url.path == "/console/sign-in"


@pytest.mark.parametrize("origin", [None, "http://evil.example", "null"])
def test_a_sign_in_posted_from_another_site_is_refused(console: Console, origin):
    headers = {"Origin": origin} if origin else {}
    answer = console.client.post("/console/sign-in", data={"key": KEYS["auditor"]}, headers=headers)
    assert answer.status_code == 403 and "set-cookie" not in answer.headers
    assert "only taken from this server" in answer.text


def test_a_wrong_key_is_refused_and_a_revoked_key_loses_its_session(console: Console, recorded):
    wrong = console.client.post("/console/sign-in", data={"key": "not-a-key-0123456789"}, headers={"Origin": ORIGIN})
    assert wrong.status_code == 401 and "That API key is not known." in wrong.text and "set-cookie" not in wrong.headers
    console.sign_in("auditor")
    assert console.get(WALLET).status_code == 200
    keys = json.loads(recorded.keys_file.read_text())
    del keys[KEYS["auditor"]]
    recorded.keys_file.write_text(json.dumps(keys))
    console.client.app.state.console_sessions.keys._next_look = 0.0  # the recheck, now instead of within a second
    assert console.get(WALLET).url.path == "/console/sign-in"


def test_sign_out_ends_the_session(console: Console):
    console.sign_in("back-office")
    assert console.get("/console/wallets").status_code == 200
    answer = console.client.post("/console/sign-out", headers={"Origin": ORIGIN}, follow_redirects=False)
    assert answer.status_code == 303 and 'kmo_console=""' in answer.headers["set-cookie"]
    assert console.get("/console/wallets").url.path == "/console/sign-in"


def test_a_wallet_named_like_a_script_shows_as_text(console: Console):
    console.sign_in("auditor")
    for answer in (console.get("/console/wallets", q="script"), console.get(f"/console/wallets/{OTHER_ENTERPRISE}")):
        assert answer.status_code == 200
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
        assert SCRIPT_NAME not in answer.text


def test_an_auditor_sees_the_timeline_a_reconciler_the_wallet_without_it(console: Console):
    console.sign_in("auditor")
    page = console.get(WALLET).text
    assert 'id="timeline"' in page and 'name="as_of"' in page and "Verification passed" in page
    console.sign_in("reconciler")
    page = console.get(WALLET).text
    assert "Bakkerij Peeters" in page and "€ 3.000,00" in page  # the application's subsidy
    assert 'id="timeline"' not in page and 'name="as_of"' not in page and "Verify" not in page
    refused = console.get(WALLET, as_of="2026-03-03")
    assert refused.status_code == 403 and "replays a wallet" in refused.text
    assert console.get("/console/deadlines").status_code == 403  # an auditor's read in the API too
    assert 'href="/console/deadlines"' not in page and 'href="/console/payout-orders"' in page  # nor offered
    assert console.get("/console/payout-orders").status_code == 200


def test_a_provider_sees_only_its_own_applications(console: Console, recorded):
    console.sign_in("provider")
    inbox = console.get("/console")
    assert inbox.url.path == "/console/inbox/DV.O207084"
    offered = set(re.findall(r'<li><a href="(/console/[a-z-]+)">', inbox.text))
    assert offered == {"/console/inbox"}
    assert "2026-0403170701-0001" in inbox.text and OTHER_ENTERPRISE not in inbox.text
    own = console.get(f"{WALLET}/applications/{recorded.peeters_application}")
    assert own.status_code == 200 and "€ 3.000,00" in own.text
    other = console.get(f"/console/wallets/{OTHER_ENTERPRISE}/applications/{recorded.other_application}")
    assert other.status_code == 404 and "alert(1)" not in other.text and "€" not in other.text
    for path in ("/console/wallets", WALLET, "/console/inbox/DV.O999999", "/console/reconciliation"):
        answer = console.get(path)
        assert answer.status_code in (403, 404), path
        assert "Bakkerij" not in answer.text and "alert(1)" not in answer.text


def test_errors_are_pages_with_their_status(console: Console):
    console.sign_in("auditor")
    cases = {
        "/console/wallets/0202239952": (422, "enterprise number"),  # a wrong check digit
        "/console/wallets/0100000763": (404, "no wallet for enterprise 0100000763"),
        f"{WALLET}?as_of=someday": (422, "is not a date"),
        f"{WALLET}?as_of=1/1/99999999999": (422, "is not a date"),  # a year no date holds: no 500
        "/console/reconciliation?from=99999999999/1/1": (422, "is not a date"),
        f"{WALLET}?as_of=2026-01-01": (404, "did not exist on 2026-01-01"),
        f"{WALLET}?page=0": (422, "page"),
        "/console/reconciliation?from=2026-05-01&to=2026-04-01": (422, "lies after"),
    }
    for path, (status, words) in cases.items():
        answer = console.client.get(path)
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"].startswith("text/html") and words in answer.text, path


def test_the_timeline_pages_a_long_wallet(console: Console, recorded):
    ledger = KmoLedger(recorded.database_url)
    try:
        ledger.open_wallet(c.OpenWallet(enterprise_number="0100000664", name="Lang", sme=sme()), BACK_OFFICE)
        for i in range(PAGE + 9):
            ledger.file_sme_figures("0100000664", c.FileSmeFigures(year=2000 + i % 20, sme=sme()), BACK_OFFICE)
    finally:
        ledger.close()
    console.sign_in("auditor")
    first, second = console.get("/console/wallets/0100000664"), console.get("/console/wallets/0100000664", page=2)
    assert first.text.count('<tr id="event-') == PAGE and "page 1 of 2" in first.text
    assert (
        second.text.count('<tr id="event-') == 10 and 'id="event-60"' in second.text and 'id="event-51"' in second.text
    )
    assert 'id="event-50"' not in second.text


def test_an_auditor_sees_a_short_wallets_verification_at_once_and_a_long_ones_on_request(console: Console, monkeypatch):
    console.sign_in("auditor")
    shown = console.get(WALLET)
    assert "Verification passed" in shown.text and "Verify the chain and invariants" not in shown.text
    monkeypatch.setattr(wallet_page, "VERIFIED_AT_ONCE", 2)  # this wallet is longer than that
    asked = console.get(WALLET)
    assert "Verify the chain and invariants" in asked.text and "Verification passed" not in asked.text
    assert "Verification passed" in console.get(WALLET, verify="true").text
    console.sign_in("reconciler")
    assert "Verification" not in console.get(WALLET).text


def test_across_wallets_pages_show_the_reads_of_the_api(console: Console):
    console.sign_in("back-office")
    orders = console.get("/console/payout-orders")
    assert "€ 1.000,00" in orders.text and "01/04/2026" in orders.text and "15/04/2026" in orders.text
    totals = console.get("/console/reconciliation", kind="held", **{"from": "2026-03-01", "to": "2026-04-30"})
    assert "05/03/2026" in totals.text and "<svg" in totals.text and "€ 10.000,00" in totals.text
    deadlines = console.get("/console/deadlines", within_days=3660)
    assert deadlines.status_code == 200 and "0202239951" in deadlines.text


def test_money_and_dates_as_a_flemish_auditor_reads_them():
    assert formatting.euro("1234.56") == "€ 1.234,56"
    assert formatting.euro(-123456789) == "€ -1.234.567,89"
    assert formatting.euro("0.05") == "€ 0,05"
    assert (
        formatting.day("2026-12-31") == "31/12/2026" and formatting.long_day(date(2026, 12, 31)) == "31 december 2026"
    )
    assert formatting.percent("30.00") == "30,00 %"
    assert formatting.parse_day("31/12/2026") == formatting.parse_day("2026-12-31") == date(2026, 12, 31)


def test_a_long_history_is_drawn_with_a_few_hundred_points():
    changes = [(date(2000, 1, 1).fromordinal(730000 + i), (100, 50)) for i in range(10_000)]
    chart = charts.line_chart(charts.end_of_day_values(changes, 2), (("own", "a"), ("subsidy", "b")))
    assert chart is not None and chart.days == 10_000 and chart.drawn <= charts.MAX_POINTS
    assert chart.lines[0].last == 1_000_000 and chart.lines[1].last == 500_000
    assert len(chart.lines[0].points.split()) <= 2 * charts.MAX_POINTS
    assert charts.line_chart([(date(2026, 1, 1), [0, 0])], (("own", "a"), ("subsidy", "b"))) is None


def test_a_wallet_whose_stored_event_cannot_be_read_shows_what_verification_finds(console: Console, recorded):
    stored = StoredEvents(recorded.database_url)
    state = orjson.loads(stored.state(wallet_id(TAMPERED), 2))
    state["subsidy"] = "a lot"
    stored.update(wallet_id(TAMPERED), 2, orjson.dumps(state))
    console.sign_in("auditor")
    answer = console.get(f"/console/wallets/{TAMPERED}")
    assert answer.status_code == 422 and "stored events cannot be read" in answer.text
    assert "event 2 (ApplicationSubmitted) was changed" in answer.text
    console.sign_in("reconciler")  # verification is an auditor's read: the refusal alone
    answer = console.get(f"/console/wallets/{TAMPERED}")
    assert answer.status_code == 422 and "was changed" not in answer.text


def test_a_session_ends_after_eight_hours(console: Console):
    with freeze_time("2026-12-07 08:00:00"):
        console.sign_in("auditor")
    with freeze_time("2026-12-07 15:59:00"):
        assert console.get("/console/wallets").url.path == "/console/wallets"
    with freeze_time("2026-12-07 16:00:02"):
        assert console.get("/console/wallets").url.path == "/console/sign-in"


def test_the_gate_caps_a_console_post_too(console: Console):
    answer = console.client.post("/console/sign-in", data={"key": "k" * 2_000_000}, headers={"Origin": ORIGIN})
    assert answer.status_code == 413 and "set-cookie" not in answer.headers
    assert_guarded(answer)


def test_the_signing_secret_is_kept_owner_only_beside_the_keys_file_or_given(recorded, tmp_path):
    settings = Settings(database_url=recorded.database_url, api_keys_file=recorded.keys_file)
    first = console_secret(settings)
    kept = recorded.keys_file.parent / SECRET_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and len(first) >= 32
    assert console_secret(settings) == first  # a restart, or another worker, signs alike
    given = Settings(database_url=recorded.database_url, api_keys_file=recorded.keys_file, console_secret="s" * 32)
    assert console_secret(given) == "s" * 32
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    keys = not_a_folder / "keys.json"  # nowhere to write the secret, even as root
    with pytest.raises(SettingsError, match="KMO_LEDGER_CONSOLE_SECRET"):
        console_secret(Settings(database_url=recorded.database_url, api_keys_file=keys))


@pytest.mark.parametrize("day", ["2026-03-02", "2026-03-05", "2026-04-01", "2026-12-31"])
def test_the_page_as_of_a_day_holds_the_numbers_of_state_as_of(console: Console, day):
    console.sign_in("auditor")
    page = console.get(WALLET, as_of=day).text
    state = console.client.get(
        f"/v1/wallets/{ENTERPRISE}/state", params={"as_of": day}, headers={"Authorization": f"Bearer {KEYS['auditor']}"}
    ).json()
    figures = page[page.index('<dl class="figures">') : page.index("</dl>")]
    shown = dict(re.findall(r'data-balance="(\w+)">([^<]*)<', figures))
    assert shown == {
        "held_own_share": formatting.euro(state["held"]["own_share"]),
        "held_subsidy": formatting.euro(state["held"]["subsidy"]),
        "due_enterprise": formatting.euro(state["due"]["enterprise"]),
        "due_government": formatting.euro(state["due"]["government"]),
    }
    for ceiling in state["ceilings"]:
        assert formatting.euro(ceiling["remaining"]) in page and formatting.euro(ceiling["used"]) in page
    assert f"version {state['version']}." in page
    for application in state["applications"]:
        assert f"<td>{formatting.words(application['state'])}</td>" in page
