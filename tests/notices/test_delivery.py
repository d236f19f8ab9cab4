"""Notices delivered for real: an SMTP server (aiosmtpd) and a webhook
receiver that checks every signature, both on 127.0.0.1. What arrived is read
back: recipients, ids, the Dutch text with the right amount, reference and date."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from freezegun import freeze_time

from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain.clock import brussels_date
from ledger.domain.money import parse_euro
from ledger.notices.channels import DeliveryFailed, post_webhook
from ledger.notices.derive import Notice, ProviderEntry
from ledger.notices.settings import NoticeSettings
from ledger.notices.texts import datum, euro
from projections.notifier import Notifier
from scripts.notice_receivers import HookReceiver, MailBox, free_port
from tests.conftest import BACK_OFFICE, ENTERPRISE, PROVIDER_ACTOR, TRAINER, sme, training

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONTACT = "boekhouding@peeters.be"


@pytest.fixture
def hooks() -> Iterator[HookReceiver]:
    receiver = HookReceiver(SECRET).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def clock() -> Iterator:
    with freeze_time(START) as frozen:
        yield frozen


def settings(smtp_url: str | None, **extra) -> NoticeSettings:
    return NoticeSettings(smtp_url=smtp_url, notice_retry_seconds=0, **extra)


def notifier_on(ledger: KmoLedger, smtp_url: str | None, **extra) -> Notifier:
    return Notifier(ledger, settings(smtp_url, **extra), seed=1)


def open_and_submit(ledger: KmoLedger, fee: str = "10000.00", contact: str | None = CONTACT) -> str:
    ledger.open_wallet(
        c.OpenWallet(enterprise_number=ENTERPRISE, name="Bakkerij Peeters", sme=sme(), contact_email=contact),
        BACK_OFFICE,
    )
    today = brussels_date(datetime.now(UTC))
    _wallet, application_id = ledger.submit_application(
        ENTERPRISE, c.SubmitApplication(**training(today + timedelta(days=10), fee=fee)), BACK_OFFICE
    )
    return application_id


def pay_own_share(ledger: KmoLedger, application_id: str, view: dict, value_date: date) -> None:
    """The whole own share of the application ``view`` shows, paid on ``value_date``."""
    deposit = c.DepositOwnShare(
        amount=parse_euro(view["own_share"]), payment_reference=view["payment_reference"], value_date=value_date
    )
    ledger.handle(ENTERPRISE, application_id, deposit, BACK_OFFICE)


def statuses(notifier: Notifier) -> dict[str, list[str]]:
    rows, _ = notifier.store.page(None, None, 500)
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["status"], []).append(row["type"])
    return found


def test_the_payment_instructions_arrive_in_dutch_with_amount_reference_and_date(database_url, mailbox, clock):
    ledger = KmoLedger(database_url)
    notifier = notifier_on(ledger, mailbox.url)
    try:
        application_id = open_and_submit(ledger)
        application = ledger.application_summary(ENTERPRISE, application_id)
        report = notifier.run_pass()
        assert report.delivered == 1
        [message] = mailbox.messages
        assert message["To"] == CONTACT and message["X-Envelope-To"] == CONTACT
        assert message["Subject"] == f"Betaalinstructies eigen bijdrage, project {application['project_number']}"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        deposit_by = date.fromisoformat(application["deadlines"]["deposit_by"])
        assert "€ 7.000,00" in text and euro(application["own_share"]) == "€ 7.000,00"
        assert application["payment_reference"] in text and datum(deposit_by) in text
        assert f"uiterlijk op {deposit_by:%d/%m/%Y}" in text
        assert "BE71 0961 2345 6769" in text and "Gestructureerde mededeling" in text
        assert "€ 7.000,00" in html and application["payment_reference"] in html
        rows, _ = notifier.store.page("delivered", None, 10)
        assert [row["type"] for row in rows] == ["payment_instructions"]
        assert message["Message-ID"] == f"<{rows[0]['id']}@notices.kmo-ledger>"
        # the provider is in no directory: kept, visible, undeliverable
        [kept] = notifier.store.page("undeliverable", None, 10)[0]
        assert (kept["type"], kept["recipient"]) == ("application_awaiting_confirmation", TRAINER)
        assert "no e-mail address known for provider" in kept["last_error"]
        again = notifier.run_pass()
        assert (again.derived, again.delivered, len(mailbox.messages)) == (0, 0, 1)
    finally:
        notifier.close()
        ledger.close()


def test_a_provider_webhook_is_signed_and_its_id_is_the_notices(sqlite_url, hooks, mailbox, clock):
    ledger = KmoLedger(sqlite_url)
    notifier = notifier_on(ledger, mailbox.url)
    try:
        notifier.store.put_provider(ProviderEntry(TRAINER, "Opleidingen Janssens", None, hooks.url), SECRET, START)
        application_id = open_and_submit(ledger)
        notifier.run_pass()
        [hook] = hooks.received
        assert hooks.refused == []
        body = hook["body"]
        assert body["type"] == "application_awaiting_confirmation"
        assert (
            body["data"]["application_id"] == application_id and body["data"]["provider_name"] == "Opleidingen Janssens"
        )
        assert body["data"]["answer_by"] == (brussels_date(START) + timedelta(days=14)).isoformat()
        assert hook["headers"]["webhook-id"] == body["id"]
        assert notifier.store.get(body["id"])["status"] == "delivered"
    finally:
        notifier.close()
        ledger.close()


def test_a_failing_receiver_is_retried_then_parked_and_redelivered_under_the_same_id(sqlite_url, hooks, clock):
    port = free_port()
    ledger = KmoLedger(sqlite_url)
    notifier = notifier_on(ledger, f"smtp://127.0.0.1:{port}", notice_max_attempts=3)
    hooks.failing = True
    try:
        notifier.store.put_provider(ProviderEntry(TRAINER, "Janssens", None, hooks.url), SECRET, START)
        open_and_submit(ledger)
        for _ in range(3):
            notifier.run_pass()
        found = statuses(notifier)
        assert sorted(found["failed"]) == ["application_awaiting_confirmation", "payment_instructions"]
        parked = notifier.store.page("failed", None, 10)[0]
        assert all(row["attempts"] == 3 for row in parked)
        errors = {row["channel"]: row["last_error"] for row in parked}
        assert "HTTP 500" in errors["webhook"] and "SMTP" in errors["email"]
        notifier.run_pass()
        assert len(notifier.store.page("failed", None, 10)[0]) == 2, "a parked notice is not retried by itself"
        # the receivers are back: a redelivery sends each again, under the same id
        hooks.failing = False
        box = MailBox(port=port).start()
        try:
            for row in parked:
                assert notifier.store.redeliver(row["id"], notifier.address_now(row), START)["status"] == "pending"
            notifier.run_pass()
            assert statuses(notifier).keys() == {"delivered"}
            assert hooks.ids() == [r["id"] for r in parked if r["channel"] == "webhook"]
            assert box.ids() == [r["id"] for r in parked if r["channel"] == "email"]
        finally:
            box.stop()
    finally:
        notifier.close()
        ledger.close()


def test_a_notice_with_no_recipient_is_kept_and_sent_once_a_contact_is_known(database_url, mailbox, clock):
    ledger = KmoLedger(database_url)
    notifier = notifier_on(ledger, mailbox.url)
    try:
        open_and_submit(ledger, contact=None)
        notifier.run_pass()
        [row] = [r for r in notifier.store.page("undeliverable", None, 10)[0] if r["party"] == "enterprise"]
        assert row["type"] == "payment_instructions" and row["address"] is None
        assert notifier.store.redeliver(row["id"], notifier.address_now(row), START)["status"] == "undeliverable"
        ledger.change_contact_email(ENTERPRISE, c.ChangeContactEmail(contact_email=CONTACT), BACK_OFFICE)
        assert notifier.store.redeliver(row["id"], notifier.address_now(row), START)["status"] == "pending"
        notifier.run_pass()
        assert mailbox.ids() == [row["id"]] and mailbox.messages[0]["To"] == CONTACT
    finally:
        notifier.close()
        ledger.close()


def test_a_redirect_is_not_followed_and_http_to_another_host_is_refused(hooks):
    notice = Notice(
        "0" * 8 + "-0000-0000-0000-" + "0" * 12,
        "payout_ordered",
        "provider",
        TRAINER,
        "webhook",
        hooks.url,
        ENTERPRISE,
        None,
        "s",
        {},
    )
    hooks.answer = 302
    hooks.extra_headers = {"Location": "https://elsewhere.example/hooks"}
    with pytest.raises(DeliveryFailed, match="HTTP 302 .a redirect, not followed"):
        post_webhook(notice, hooks.url, SECRET, 5, datetime.now(UTC))
    with pytest.raises(DeliveryFailed, match="plain http is allowed only to a loopback"):
        post_webhook(notice, "http://192.0.2.10/hooks", SECRET, 5, datetime.now(UTC))


def test_reminders_go_out_on_their_boundary_days_once_and_never_after_the_deadline_is_met(sqlite_url, mailbox, clock):
    ledger = KmoLedger(sqlite_url)
    notifier = notifier_on(ledger, mailbox.url)
    try:
        first = open_and_submit(ledger, fee="1000.00")
        second = ledger.submit_application(
            ENTERPRISE,
            c.SubmitApplication(**training(brussels_date(START) + timedelta(days=10), fee="2000.00")),
            BACK_OFFICE,
        )[1]
        for application_id in (first, second):
            ledger.handle(ENTERPRISE, application_id, c.ConfirmApplication(), PROVIDER_ACTOR)
        views = {a: ledger.application_summary(ENTERPRISE, a) for a in (first, second)}
        deadline = date.fromisoformat(views[first]["deadlines"]["deposit_by"])
        notifier.run_pass()

        def reminders() -> list[tuple[str, int]]:
            rows = notifier.store.page(None, None, 500)[0]
            return sorted(
                (r["application_id"], r["data"]["days_before"]) for r in rows if r["type"] == "own_share_reminder"
            )

        def on(day: date) -> None:
            clock.move_to(datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC))
            notifier.run_pass()

        on(deadline - timedelta(days=8))
        assert reminders() == []
        # the second application's own share is paid early: it is never reminded
        view = views[second]
        pay_own_share(ledger, second, view, deadline - timedelta(days=8))
        on(deadline - timedelta(days=7))
        assert reminders() == [(first, 7)]
        on(deadline - timedelta(days=7))
        on(deadline - timedelta(days=3))
        assert reminders() == [(first, 7)]
        on(deadline - timedelta(days=2))
        assert reminders() == [(first, 2), (first, 7)]
        texts = [m.get_body(("plain",)).get_content() for m in mailbox.messages if "Herinnering" in m["Subject"]]
        assert len(texts) == 2 and f"uiterlijk op {deadline:%d/%m/%Y}" in texts[1] and "Nog 2 dagen" in texts[1]
        on(deadline - timedelta(days=1))
        pay_own_share(ledger, first, views[first], deadline - timedelta(days=1))
        on(deadline)
        assert reminders() == [(first, 2), (first, 7)]
        assert not any(r["type"] == "answer_reminder" for r in notifier.store.page(None, None, 500)[0])
    finally:
        notifier.close()
        ledger.close()


def test_a_reminder_left_pending_is_not_sent_once_its_deadline_is_met_nor_when_redelivered(sqlite_url, mailbox, clock):
    ledger = KmoLedger(sqlite_url)
    dead = notifier_on(ledger, f"smtp://127.0.0.1:{free_port()}", notice_timeout_seconds=1)  # nothing listens
    try:
        application_id = open_and_submit(ledger)
        ledger.handle(ENTERPRISE, application_id, c.ConfirmApplication(), PROVIDER_ACTOR)
        view = ledger.application_summary(ENTERPRISE, application_id)
        deadline = date.fromisoformat(view["deadlines"]["deposit_by"])
        clock.move_to(datetime(deadline.year, deadline.month, deadline.day, 8, 0, tzinfo=UTC) - timedelta(days=2))
        dead.run_pass()  # the reminder is made; its send fails, it waits for a retry
        [reminder] = [row for row in dead.store.page(None, None, 500)[0] if row["type"] == "own_share_reminder"]
        assert reminder["status"] == "pending" and reminder["attempts"] == 1
        pay_own_share(ledger, application_id, view, deadline - timedelta(days=2))
    finally:
        dead.close()
    live = notifier_on(ledger, mailbox.url)
    try:
        live.run_pass()  # the server is back: everything else goes out, the reminder does not
        assert mailbox.messages and not any("Herinnering" in m["Subject"] for m in mailbox.messages)
        parked = live.store.get(reminder["id"])
        assert parked["status"] == "failed" and "deadline was met" in parked["last_error"]
        live.store.redeliver(reminder["id"], CONTACT, datetime.now(UTC))  # back-office sends it again by hand
        live.run_pass()
        assert not any("Herinnering" in m["Subject"] for m in mailbox.messages)
        assert live.store.get(reminder["id"])["status"] == "failed"
    finally:
        live.close()
        ledger.close()
