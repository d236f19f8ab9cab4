"""The console and ``/docs`` in a real browser: Debian's Chromium driven by
Playwright, against ``kmo-ledger serve`` on a 127.0.0.1 port, with every
request to any other host blocked (and none may be).

Without Chromium or Playwright these tests are skipped; with ``CI=true`` they
fail instead. Each page is saved as a PNG under ``var/screenshots/`` (or
``KMO_LEDGER_SCREENSHOTS``); ``wallet.png`` is the README's
``docs/console-wallet.png``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from api.console.formatting import euro
from ledger.application import KmoLedger
from ledger.audit.replay import wallet_replay
from ledger.domain.identifiers import wallet_id
from scripts.local_server import Server
from tests.api.conftest import KEYS, Api
from tests.conftest import ENTERPRISE, OTHER_ENTERPRISE
from tests.console.conftest import SCRIPT_NAME, TAMPERED, Recorded, in_ci, record_story
from tests.tools.helpers import StoredEvents

ROOT = Path(__file__).resolve().parents[2]
WAIT_MS = 30_000
BALANCES = ("held_own_share", "held_subsidy", "due_enterprise", "due_government")


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"the browser tests must run in CI: {reason}")
    pytest.skip(reason)


def chromium_path() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        _unavailable(f"Playwright for Python is not installed: {error}")
    path = chromium_path()
    if path is None:
        _unavailable("no Chromium (apt-get install -y chromium)")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=path, headless=True, timeout=WAIT_MS)
    except Exception as error:  # the reason is shown with the skip, or fails in CI
        playwright.stop()
        _unavailable(f"Chromium did not start: {str(error).splitlines()[0]}")
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[Server, Recorded]]:
    folder = tmp_path_factory.mktemp("console")
    recorded = record_story(folder)
    env = {
        **os.environ,
        "KMO_LEDGER_DATABASE_URL": recorded.database_url,
        "KMO_LEDGER_API_KEYS_FILE": str(recorded.keys_file),
    }
    server = Server(env, str(ROOT))
    server.start()
    yield server, recorded
    server.stop()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    folder = Path(os.environ.get("KMO_LEDGER_SCREENSHOTS", ROOT / "var" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Visit:
    """One browser context (its own cookies) that may only reach 127.0.0.1."""

    def __init__(self, browser, server: Server, screenshots: Path):
        self.server = server
        self.screenshots = screenshots
        self.blocked: list[str] = []
        self.dialogs: list[str] = []
        self.context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900}, locale="nl-BE")
        self.context.set_default_timeout(WAIT_MS)
        self.context.route("**/*", self._only_here)
        self.page = self.context.new_page()
        self.page.on("dialog", self._dialog)

    def _only_here(self, route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, path: str):
        return self.page.goto(path, wait_until="load")

    def sign_in(self, who: str) -> None:
        self.open("/console")
        self.page.get_by_label("API key").fill(KEYS[who])
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(r"/console/(wallets|inbox)"))

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.screenshots / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser, served, screenshots) -> Iterator[Visit]:
    server, _recorded = served
    visit = Visit(browser, server, screenshots)
    yield visit
    visit.close()
    assert visit.blocked == [], "a page asked for another host than 127.0.0.1"
    assert visit.dialogs == [], "a page ran a script that opened a dialog"


def api_get(server: Server, path: str, **params) -> dict:
    answer = httpx.get(f"{server.url}/v1{path}", params=params, headers=Api.headers("auditor"), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def shown_balances(scope) -> dict[str, str]:
    return {name: scope.locator(f'[data-balance="{name}"]').inner_text().strip() for name in BALANCES}


def in_words(held_due: dict) -> dict[str, str]:
    """The API's ``held``/``due`` as the console shows them."""
    return {
        "held_own_share": euro(held_due["held"]["own_share"]),
        "held_subsidy": euro(held_due["held"]["subsidy"]),
        "due_enterprise": euro(held_due["due"]["enterprise"]),
        "due_government": euro(held_due["due"]["government"]),
    }


def test_sign_in_search_and_open_a_wallet(visit: Visit):
    visit.open("/console")
    visit.page.wait_for_url("**/console/sign-in")
    assert visit.page.get_by_label("API key").get_attribute("type") == "password"
    visit.shot("sign-in")
    visit.sign_in("auditor")
    visit.page.get_by_label("Enterprise number or name").fill("BE 0403.170.701")
    visit.page.get_by_role("button", name="Search").click()
    visit.page.wait_for_url("**/console/wallets?q=*")
    rows = visit.page.locator("table tbody tr")
    assert rows.count() == 1 and "Bakkerij Peeters" in rows.inner_text()
    visit.shot("wallets")
    visit.page.get_by_role("link", name=ENTERPRISE).click()
    visit.page.wait_for_url(f"**/console/wallets/{ENTERPRISE}")
    assert visit.page.get_by_role("heading", level=1).inner_text() == "Bakkerij Peeters"
    for section in ("Balances", "Size per year", "Ceilings per year", "Applications", "Timeline"):
        assert visit.page.get_by_role("heading", name=section).is_visible()
    visit.page.locator("#event-4 summary").click()  # the own share's deposit, expanded
    assert visit.page.locator("#event-4 details .legs").is_visible()
    visit.shot("wallet")


def test_the_timeline_balances_are_the_replay_and_the_api_numbers(visit: Visit, served):
    server, recorded = served
    visit.sign_in("auditor")
    visit.open(f"/console/wallets/{ENTERPRISE}")
    rows = visit.page.locator("table.timeline > tbody > tr")
    rows.first.wait_for()
    ledger = KmoLedger(recorded.database_url)
    try:
        replayed = wallet_replay(ledger, ENTERPRISE)["timeline"]  # what kmo-ledger replay prints
    finally:
        ledger.close()
    assert rows.count() == len(replayed) == 8
    for index, step in enumerate(replayed):
        row = rows.nth(index)
        assert row.get_attribute("data-sequence") == str(step["sequence"])
        assert shown_balances(row) == in_words(step)
    wallet = api_get(server, f"/wallets/{ENTERPRISE}")
    assert shown_balances(visit.page.locator("dl.figures")) == in_words(wallet) == in_words(replayed[-1])
    assert in_words(wallet)["held_own_share"] == "€ 4.200,00"  # 7,000 received, 70 % of the 4,000 paid out


def test_moving_the_as_of_date_replays_the_page_to_that_day(visit: Visit, served):
    server, _recorded = served
    visit.sign_in("auditor")
    visit.open(f"/console/wallets/{ENTERPRISE}")
    before = shown_balances(visit.page.locator("dl.figures"))
    for day, events in (("2026-03-05", 5), ("2026-03-02", 2)):
        visit.page.get_by_label("As of").fill(day)
        visit.page.get_by_role("button", name="Replay to this date").click()
        visit.page.wait_for_url(f"**as_of={day}*")
        replayed = api_get(server, f"/wallets/{ENTERPRISE}/state", as_of=day)
        assert shown_balances(visit.page.locator("dl.figures")) == in_words(replayed)
        assert visit.page.locator("table.timeline > tbody > tr").count() == events
        remaining = visit.page.locator("section[aria-labelledby=ceilings] tbody td").nth(6).inner_text()
        assert remaining == euro(replayed["ceilings"][0]["remaining"])
        if day == "2026-03-05":
            visit.shot("wallet-as-of")
    assert shown_balances(visit.page.locator("dl.figures")) != before
    assert in_words(api_get(server, f"/wallets/{ENTERPRISE}/state", as_of="2026-03-05"))["held_subsidy"] == "€ 3.000,00"


def test_a_wallet_whose_stored_event_was_altered_fails_verification_naming_it(visit: Visit, served):
    _server, recorded = served
    stored = StoredEvents(recorded.database_url)
    state = orjson.loads(stored.state(wallet_id(TAMPERED), 1))
    state["name"] = "Bakkerij Janssens"  # the opening's name, changed in the SQLite file
    stored.update(wallet_id(TAMPERED), 1, orjson.dumps(state))
    visit.sign_in("auditor")
    visit.open(f"/console/wallets/{TAMPERED}")  # a short wallet: verified as the page is made
    failed = visit.page.locator(".failed")
    assert "Verification failed" in failed.inner_text()
    problems = visit.page.locator(".problems li").all_inner_texts()
    assert any(p.startswith("event 1 (WalletOpened) was changed") for p in problems), problems
    visit.shot("verification-failed")
    visit.open(f"/console/wallets/{ENTERPRISE}")
    assert "Verification passed" in visit.page.locator(".passed").inner_text()


def test_a_provider_key_sees_only_its_own_applications(visit: Visit, served):
    _server, recorded = served
    visit.sign_in("provider")
    visit.page.wait_for_url("**/console/inbox/DV.O207084")
    listed = visit.page.locator("table tbody tr").all_inner_texts()
    assert len(listed) == 1 and "2026-0403170701-0001" in listed[0]
    assert OTHER_ENTERPRISE not in visit.page.content()
    visit.shot("inbox")
    visit.page.get_by_role("link", name="2026-0403170701-0001").click()
    assert "€ 3.000,00" in visit.page.locator("dl.figures").inner_text()
    other = visit.open(f"/console/wallets/{OTHER_ENTERPRISE}/applications/{recorded.other_application}")
    assert other.status == 404 and "alert(1)" not in visit.page.content()
    wallet = visit.open(f"/console/wallets/{ENTERPRISE}")
    assert wallet.status == 403 and "Bakkerij" not in visit.page.content()


def test_the_script_named_wallet_shows_as_text(visit: Visit):
    visit.sign_in("auditor")
    visit.page.get_by_label("Enterprise number or name").fill("script")
    visit.page.get_by_role("button", name="Search").click()
    visit.page.wait_for_url("**q=script*")
    assert visit.page.locator("table tbody td").nth(1).inner_text() == SCRIPT_NAME
    visit.page.get_by_role("link", name=OTHER_ENTERPRISE).click()
    assert visit.page.get_by_role("heading", level=1).inner_text() == SCRIPT_NAME
    assert visit.page.locator("script").count() == 0
    visit.shot("escaped")  # and the fixture checks no dialog fired


def test_the_pages_across_wallets(visit: Visit):
    visit.sign_in("back-office")
    visit.page.get_by_role("link", name="Overdue payout orders").click()
    assert "€ 1.000,00" in visit.page.locator("table").inner_text()
    visit.shot("payout-orders")
    visit.page.get_by_role("link", name="Reconciliation totals").click()
    visit.page.get_by_label("From", exact=True).fill("2026-03-01")
    visit.page.get_by_role("button", name="Show").click()
    visit.page.wait_for_url("**from=2026-03-01*")
    assert visit.page.locator("figure svg rect").count() >= 2 and "05/03/2026" in visit.page.content()
    visit.shot("reconciliation")
    visit.page.get_by_role("link", name="Deadlines").click()
    visit.page.get_by_label("Due within (days)").fill("3660")
    visit.page.get_by_role("button", name="Show").click()
    visit.page.wait_for_url("**within_days=3660*")
    assert OTHER_ENTERPRISE in visit.page.locator("table").inner_text()
    visit.shot("deadlines")


def test_sign_out_ends_the_session_and_a_wrong_key_is_refused(visit: Visit):
    visit.sign_in("back-office")
    assert any(cookie["name"] == "kmo_console" for cookie in visit.context.cookies())
    visit.page.get_by_role("button", name="Sign out").click()
    visit.page.wait_for_url("**/console/sign-in")
    assert not any(cookie["name"] == "kmo_console" for cookie in visit.context.cookies())
    visit.open("/console/wallets")
    assert visit.page.url.endswith("/console/sign-in")
    visit.page.get_by_label("API key").fill("a-wrong-key-0123456789abcdef")
    with visit.page.expect_response("**/console/sign-in") as answer:
        visit.page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    assert visit.page.get_by_role("alert").inner_text() == "That API key is not known."
    assert not any(cookie["name"] == "kmo_console" for cookie in visit.context.cookies())


def test_docs_lists_every_operation_with_the_network_blocked(visit: Visit, served):
    server, _recorded = served
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    operations = sum(
        1 for item in document["paths"].values() for method in item if method in ("get", "post", "put", "delete")
    )
    visit.open("/docs")
    listed = visit.page.locator(".opblock-summary")
    listed.nth(operations - 1).wait_for()
    assert listed.count() == operations
    visit.shot("docs")


def _tab_to(visit: Visit, selector: str, most: int = 40) -> None:
    """Press Tab until the element ``selector`` has the focus."""
    target = visit.page.locator(selector)
    for _ in range(most):
        if target.evaluate("element => element === document.activeElement"):
            return
        visit.page.keyboard.press("Tab")
    raise AssertionError(f"{selector} is not reached with the Tab key")


def test_the_console_works_from_the_keyboard(visit: Visit):
    visit.open("/console/sign-in")
    visit.page.wait_for_function("document.activeElement?.id === 'key'")  # autofocus: the key field
    visit.page.keyboard.type(KEYS["auditor"])
    visit.page.keyboard.press("Enter")
    visit.page.wait_for_url("**/console/wallets")
    _tab_to(visit, "#q")
    visit.page.keyboard.type("Peeters")
    visit.page.keyboard.press("Enter")
    visit.page.wait_for_url("**q=Peeters*")
    _tab_to(visit, f'a[href="/console/wallets/{ENTERPRISE}"]')
    visit.page.keyboard.press("Enter")
    visit.page.wait_for_url(f"**/console/wallets/{ENTERPRISE}")
    _tab_to(visit, "#event-2 summary", most=80)
    visit.page.keyboard.press("Enter")
    assert visit.page.locator("#event-2 details").evaluate("details => details.open")


def test_a_browser_that_cannot_start_fails_in_ci_and_is_skipped_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must run in CI: no Chromium"):
        _unavailable("no Chromium")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        _unavailable("no Chromium")
