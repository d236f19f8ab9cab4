"""Where the notifier runs: in the API's process (a thread, from start-up to
shut-down) and alone (``kmo-ledger notify``); one process delivers at a time;
a dead or slow receiver never slows or fails a command."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from api import create_app
from api.settings import Settings
from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.notices.derive import ProviderEntry
from ledger.notices.settings import NoticeSettings
from projections.notifier import LEASE_SECONDS, Notifier
from scripts.cli import main as cli
from tests.api.conftest import Api, TestClient, write_keys
from tests.conftest import BACK_OFFICE, ENTERPRISE, TRAINER, sme, training

CONTACT = "boekhouding@peeters.be"


def open_and_submit(ledger: KmoLedger) -> str:
    ledger.open_wallet(
        c.OpenWallet(enterprise_number=ENTERPRISE, name="Bakkerij Peeters", sme=sme(), contact_email=CONTACT),
        BACK_OFFICE,
    )
    return ledger.submit_application(
        ENTERPRISE, c.SubmitApplication(**training(date.today() + timedelta(days=10))), BACK_OFFICE
    )[1]


def until(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_api_delivers_in_its_own_process_when_an_smtp_server_is_set(sqlite_url, tmp_path, mailbox, monkeypatch):
    monkeypatch.setenv("KMO_LEDGER_SMTP_URL", mailbox.url)
    app = create_app(Settings(database_url=sqlite_url, api_keys_file=write_keys(tmp_path / "keys.json")))
    with TestClient(app) as client:
        api = Api(client)
        body = {"enterprise_number": ENTERPRISE, "name": "Bakkerij Peeters", "sme": sme(), "contact_email": CONTACT}
        assert api.post("/wallets", body).status_code == 201
        api.submit(date.today() + timedelta(days=10))
        assert until(lambda: len(mailbox.messages) == 1), "the in-process notifier sent nothing"
        assert mailbox.messages[0]["To"] == CONTACT
        assert [n["type"] for n in api.get("/notices", status="delivered").json()["notices"]] == [
            "payment_instructions"
        ]


def test_without_an_smtp_server_the_api_runs_no_notifier(api):
    assert api.client.app.state.notices._thread is None


def test_one_notifier_delivers_at_a_time(sqlite_url, mailbox):
    ledger = KmoLedger(sqlite_url)
    settings = NoticeSettings(smtp_url=mailbox.url)
    first, second = Notifier(ledger, settings), Notifier(ledger, settings)
    try:
        open_and_submit(ledger)
        assert first.run_pass().delivered == 1
        assert second.run_pass().holding_lease is False
        first.close()  # gives up its lease
        assert second.run_pass().holding_lease is True
        assert len(mailbox.messages) == 1
    finally:
        second.close()
        ledger.close()


def test_a_receiver_that_never_answers_neither_slows_nor_fails_a_command(sqlite_url, tmp_path, monkeypatch):
    """An SMTP 'server' that accepts and then says nothing: the notifier's send
    times out (1 s here) and is retried later; commands go on meanwhile."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    monkeypatch.setenv("KMO_LEDGER_SMTP_URL", f"smtp://127.0.0.1:{port}")
    monkeypatch.setenv("KMO_LEDGER_NOTICE_TIMEOUT_SECONDS", "1")
    app = create_app(Settings(database_url=sqlite_url, api_keys_file=write_keys(tmp_path / "keys.json")))
    try:
        with TestClient(app) as client:
            api = Api(client)
            body = {"enterprise_number": ENTERPRISE, "name": "Bakkerij Peeters", "sme": sme(), "contact_email": CONTACT}
            assert api.post("/wallets", body).status_code == 201
            slowest = 0.0
            for day in range(10, 16):
                started = time.monotonic()
                api.submit(date.today() + timedelta(days=day), fee="1000.00")
                slowest = max(slowest, time.monotonic() - started)
            assert slowest < 0.9, f"a command took {slowest:.2f} s while the receiver hung"
            assert until(lambda: any(n["last_error"] for n in api.get("/notices", status="pending").json()["notices"]))
            errors = {
                n["last_error"] for n in api.get("/notices", status="pending").json()["notices"] if n["last_error"]
            }
            assert any("timed out" in error for error in errors), errors
    finally:
        silent.close()


def test_kmo_ledger_notify_once_delivers_and_says_what_it_did(sqlite_url, mailbox, monkeypatch, capsys):
    ledger = KmoLedger(sqlite_url)
    open_and_submit(ledger)
    ledger.close()
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("KMO_LEDGER_SMTP_URL", mailbox.url)
    assert cli(["notify", "--once", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pass"]["delivered"] == 1
    assert report["notices"] == {"pending": 0, "delivered": 1, "failed": 0, "undeliverable": 1}
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize(
    "variable, value, says",
    [
        ("KMO_LEDGER_SMTP_URL", "http://127.0.0.1:25", "is not smtp://host:port"),
        ("KMO_LEDGER_NOTICE_REMINDER_DAYS", "7,two", "whole numbers"),
        ("KMO_LEDGER_FINANCIAL_MANAGER_IBAN", "BE00 0000", "not a valid IBAN"),
    ],
)
def test_bad_notice_settings_are_one_line_and_exit_2(sqlite_url, monkeypatch, capsys, variable, value, says):
    KmoLedger(sqlite_url).close()
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", sqlite_url)
    monkeypatch.setenv(variable, value)
    assert cli(["notify", "--once"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("kmo-ledger notify: ") and says in error
    assert "Traceback" not in error


def test_an_unused_provider_entry_is_harmless(sqlite_url, mailbox):
    ledger = KmoLedger(sqlite_url)
    notifier = Notifier(ledger, NoticeSettings(smtp_url=mailbox.url))
    try:
        notifier.store.put_provider(ProviderEntry(TRAINER, "Janssens", "a@janssens.be"), None, datetime.now(UTC))
        open_and_submit(ledger)
        notifier.run_pass()
        assert sorted(m["To"] for m in mailbox.messages) == ["a@janssens.be", CONTACT]
    finally:
        notifier.close()
        ledger.close()


def test_kmo_ledger_notify_runs_until_sigterm_and_gives_up_its_lease(sqlite_url, mailbox, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    ledger = KmoLedger(sqlite_url)
    open_and_submit(ledger)
    env = dict(os.environ, KMO_LEDGER_DATABASE_URL=sqlite_url, KMO_LEDGER_SMTP_URL=mailbox.url)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.cli", "notify", "--poll", "0.1"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert until(lambda: len(mailbox.messages) == 1, 30), "the notifier delivered nothing"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert process.stderr is not None and process.stderr.read() == ""
        notifier = Notifier(ledger, NoticeSettings(smtp_url=mailbox.url))
        try:
            assert notifier.store.state()[1] is None, "the lease was not given up"
        finally:
            notifier.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        ledger.close()


def test_a_notifier_whose_lease_ran_out_and_was_taken_stops_delivering(sqlite_url, mailbox):
    ledger = KmoLedger(sqlite_url)
    settings = NoticeSettings(smtp_url=mailbox.url)
    first, second = Notifier(ledger, settings), Notifier(ledger, settings)
    try:
        open_and_submit(ledger)
        assert first.store.take_lease(first.holder, time.time())
        first.derive()
        # the first stalled past its lease: the second takes it over
        assert second.store.take_lease(second.holder, time.time() + LEASE_SECONDS + 1)
        assert first.deliver() == (0, 0) and mailbox.messages == []
        assert second.run_pass().delivered == 1
    finally:
        first.close()
        second.close()
        ledger.close()
