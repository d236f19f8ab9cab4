"""Delivery over kept sessions (#20): many e-mails go over one SMTP session
per sender, many webhooks over one kept-alive connection per sender; a session
the server drops midway is opened again and nothing is lost; the sessions close
at the end of a pass; a slow receiver does not hold the others back. Counted
at the receivers' side: the client's (host, port) of each message is its
connection."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from ledger.application import KmoLedger
from ledger.notices.derive import ProviderEntry
from ledger.notices.settings import NoticeSettings
from projections.notifier import Notifier
from scripts.notice_receivers import HookReceiver, MailBox
from scripts.notices_drill import PROVIDER, lives

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()


@pytest.fixture
def hooks() -> Iterator[HookReceiver]:
    receiver = HookReceiver(SECRET).start()
    yield receiver
    receiver.stop()


def notifier_on(ledger: KmoLedger, smtp_url: str, **extra) -> Notifier:
    return Notifier(ledger, NoticeSettings(smtp_url=smtp_url, notice_retry_seconds=0, **extra), seed=2)


def pending_by_channel(notifier: Notifier) -> dict[str, set[str]]:
    rows = notifier.store.page("pending", None, 1000)[0]
    return {channel: {r["id"] for r in rows if r["channel"] == channel} for channel in ("email", "webhook")}


def test_e_mails_go_over_one_kept_session_per_sender_and_a_new_one_each_pass(database_url):
    box = MailBox().start()
    ledger = KmoLedger(database_url)
    notifier = notifier_on(ledger, box.url, notice_connections=1)
    try:
        lives(ledger, 4, 700)  # the enterprise's e-mails (the provider is unknown: its notices are undeliverable)
        notifier.run_pass()
        delivered = notifier.store.page("delivered", None, 1000)[0]
        assert len(delivered) >= 12 and sorted(box.ids()) == sorted(r["id"] for r in delivered)
        assert len(set(box.sessions)) == 1, "every e-mail of a pass over one session"
        lives(ledger, 1, 710)
        notifier.run_pass()
        assert len(set(box.sessions)) == 2, "the next pass opens a session of its own (the first was closed)"
        assert box.sessions[-1] != box.sessions[0]
    finally:
        notifier.close()
        ledger.close()
        box.stop()


def test_a_session_the_server_drops_midway_is_opened_again_and_no_e_mail_is_lost(database_url):
    box = MailBox(drop_after=3).start()  # a server closing each session after three messages
    ledger = KmoLedger(database_url)
    notifier = notifier_on(ledger, box.url, notice_connections=1)
    try:
        lives(ledger, 3, 720)
        report = notifier.run_pass()
        delivered = {r["id"] for r in notifier.store.page("delivered", None, 1000)[0]}
        assert report.failed == 0 and len(delivered) == report.delivered >= 10
        assert sorted(box.ids()) == sorted(delivered), "each e-mail arrived once, none was lost or sent twice"
        per_session = [box.sessions.count(peer) for peer in dict.fromkeys(box.sessions)]
        assert per_session == [3] * (len(delivered) // 3) + ([len(delivered) % 3] if len(delivered) % 3 else [])
        assert all(r["attempts"] == 1 for r in notifier.store.page("delivered", None, 1000)[0])
    finally:
        notifier.close()
        ledger.close()
        box.stop()


def test_webhooks_go_over_kept_alive_connections_and_e_mails_beside_them(database_url, hooks):
    box = MailBox().start()
    ledger = KmoLedger(database_url)
    notifier = notifier_on(ledger, box.url, notice_connections=2)
    try:
        notifier.store.put_provider(
            ProviderEntry(PROVIDER, "Opleidingen", "aanvragen@opleidingen.example.be", hooks.url),
            SECRET,
            datetime.now(UTC),
        )
        lives(ledger, 3, 730)
        report = notifier.run_pass()
        assert report.failed == 0 and notifier.store.counts()["pending"] == 0
        assert len(hooks.ids()) >= 6 and not hooks.refused
        assert len(set(hooks.connections)) <= 2, "webhooks over at most notice_connections kept-alive connections"
        assert len(box.ids()) >= 12 and len(set(box.sessions)) <= 2
    finally:
        notifier.close()
        ledger.close()
        box.stop()


def test_a_connection_the_webhook_receiver_drops_midway_is_opened_again_and_no_webhook_is_lost(database_url, hooks):
    hooks.close_after = 3  # each connection closed after three requests, its answers still saying keep-alive
    box = MailBox().start()
    ledger = KmoLedger(database_url)
    notifier = notifier_on(ledger, box.url, notice_connections=1)
    try:
        notifier.store.put_provider(ProviderEntry(PROVIDER, "Opleidingen", None, hooks.url), SECRET, datetime.now(UTC))
        lives(ledger, 3, 750)
        report = notifier.run_pass()
        hooked = {r["id"] for r in notifier.store.page("delivered", None, 1000)[0] if r["channel"] == "webhook"}
        assert report.failed == 0 and notifier.store.counts()["pending"] == 0 and len(hooked) >= 7
        assert sorted(hooks.ids()) == sorted(hooked), "each webhook arrived once, none was lost or sent twice"
        per_connection = [hooks.connections.count(peer) for peer in dict.fromkeys(hooks.connections)]
        assert per_connection == [3] * (len(hooked) // 3) + ([len(hooked) % 3] if len(hooked) % 3 else [])
    finally:
        notifier.close()
        ledger.close()
        box.stop()


def test_a_slow_webhook_receiver_does_not_hold_back_the_e_mails(database_url, hooks):
    box = MailBox().start()
    hooks.delay = 0.4  # each answer takes 0.4 s
    ledger = KmoLedger(database_url)
    notifier = notifier_on(ledger, box.url, notice_connections=1, notice_timeout_seconds=1.0)
    try:
        notifier.store.put_provider(ProviderEntry(PROVIDER, "Opleidingen", None, hooks.url), SECRET, datetime.now(UTC))
        lives(ledger, 4, 740)
        notifier.store.take_lease(notifier.holder, time.time())
        notifier.derive()
        due = pending_by_channel(notifier)
        assert len(due["webhook"]) >= 8 and len(due["email"]) >= 12
        passing = threading.Thread(target=notifier.deliver)
        started = time.monotonic()
        passing.start()
        while len(box.ids()) < len(due["email"]) and time.monotonic() - started < 30:
            time.sleep(0.02)
        mails_done, hooks_then = time.monotonic() - started, len(hooks.ids())
        passing.join(60)
        assert not passing.is_alive()
        assert mails_done < 2.0 and hooks_then < len(due["webhook"]), "the e-mails went while the webhooks crawled"
        assert sorted(hooks.ids()) == sorted(due["webhook"]) and sorted(box.ids()) == sorted(due["email"])
        # a sender leaves its batch's rest once the batch has run for the timeout: untried, no attempt counted
        assert all(r["attempts"] == 1 for r in notifier.store.page("delivered", None, 1000)[0])
    finally:
        notifier.close()
        ledger.close()
        box.stop()
