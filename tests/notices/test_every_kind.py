"""Every kind of notice, produced by real lives of applications and delivered
to a real SMTP server and webhook receiver: each renders in Dutch (no
template refers to a fact its notice lacks), the money as € 1.234,56 and the
dates as 31/12/2026. ``python -m tests.notices.test_every_kind`` prints one
sample e-mail (the text part) of each kind."""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from freezegun import freeze_time

from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain.clock import brussels_date
from ledger.domain.money import parse_euro
from ledger.notices.derive import TYPES, ProviderEntry
from ledger.notices.settings import NoticeSettings
from projections.notifier import Notifier
from scripts.notice_receivers import HookReceiver, MailBox
from tests.conftest import BACK_OFFICE, ENTERPRISE, PROVIDER_ACTOR, TRAINER, sme, training

SECRET = "whsec_" + base64.b64encode(b"e" * 32).decode()
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def every_kind(database_url: str) -> Iterator[tuple[str, EmailMessage]]:
    """(type, e-mail) of every kind of notice, the provider's by e-mail too."""
    mailbox, hooks = MailBox().start(), HookReceiver(SECRET).start()
    with freeze_time(START) as clock:
        ledger = KmoLedger(database_url)
        notifier = Notifier(ledger, NoticeSettings(smtp_url=mailbox.url), seed=3)
        try:
            notifier.store.put_provider(
                ProviderEntry(TRAINER, "Opleidingen Janssens", "aanvragen@janssens.be", hooks.url), SECRET, START
            )
            ledger.open_wallet(
                c.OpenWallet(
                    enterprise_number=ENTERPRISE,
                    name="Bakkerij Peeters",
                    sme=sme(),
                    contact_email="boekhouding@peeters.be",
                ),
                BACK_OFFICE,
            )
            today = brussels_date(START)

            def submit(fee: str) -> tuple[str, dict]:
                command = c.SubmitApplication(**training(today + timedelta(days=10), fee=fee))
                application_id = ledger.submit_application(ENTERPRISE, command, BACK_OFFICE)[1]
                return application_id, ledger.application_summary(ENTERPRISE, application_id)

            def fund(application_id: str, view: dict) -> None:
                ledger.handle(ENTERPRISE, application_id, c.ConfirmApplication(), PROVIDER_ACTOR)
                deposit = c.DepositOwnShare(
                    amount=parse_euro(view["own_share"]), payment_reference=view["payment_reference"], value_date=today
                )
                ledger.handle(ENTERPRISE, application_id, deposit, BACK_OFFICE)
                top_up = c.TopUpSubsidy(amount=parse_euro(view["subsidy"]), value_date=today)
                ledger.handle(ENTERPRISE, application_id, top_up, BACK_OFFICE)

            paid, paid_view = submit("1000.00")  # paid out in part
            fund(paid, paid_view)
            order = ledger.handle(ENTERPRISE, paid, c.OrderPayout(amount=parse_euro("400.00")), BACK_OFFICE)[1]
            ledger.handle(ENTERPRISE, paid, c.ExecutePayout(order_id=order, value_date=today), BACK_OFFICE)
            ledger.handle(ENTERPRISE, paid, c.StopProject(reason="other"), BACK_OFFICE)  # a recovery
            refused, _ = submit("1100.00")
            ledger.handle(ENTERPRISE, refused, c.RefuseApplication(reason="Verbonden partijen"), PROVIDER_ACTOR)
            stopped, stopped_view = submit("1200.00")
            fund(stopped, stopped_view)
            ledger.handle(ENTERPRISE, stopped, c.StopProject(reason="on_request"), BACK_OFFICE)
            fund(*submit("1300.00"))
            submit("1400.00")  # no answer, no deposit: reminders, then a lapse
            notifier.run_pass()
            clock.move_to(START + timedelta(days=7))  # 7 days before the answer deadline
            notifier.run_pass()
            clock.move_to(START + timedelta(days=15))
            ledger.run_deadlines()
            notifier.run_pass()
            # the own-share reminder: a fresh application left unpaid until 7 days before its deadline
            unpaid, _ = submit("1500.00")
            ledger.handle(ENTERPRISE, unpaid, c.ConfirmApplication(), PROVIDER_ACTOR)
            clock.move_to(START + timedelta(days=15 + 23))
            notifier.run_pass()
            clock.move_to(datetime(today.year + 1, 12, 31, 12, tzinfo=UTC) + timedelta(days=2))
            ledger.run_deadlines()  # the funded one is closed, its money goes back
            notifier.run_pass()
            for message in mailbox.messages:
                yield str(message["X-Notice-Type"]), message
        finally:
            notifier.close()
            ledger.close()
            mailbox.stop()
            hooks.stop()


def test_every_kind_of_notice_is_sent_and_reads_in_dutch(sqlite_url):
    seen: dict[str, EmailMessage] = {}
    for kind, message in every_kind(sqlite_url):
        seen.setdefault(kind, message)
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert text.startswith("Beste ") and "Met vriendelijke groeten" in text
        assert str(message["Subject"]) == str(message["Subject"]).strip(), "a subject folded onto a second line"
        assert '<html lang="nl">' in html
        assert not re.search(r"\d{4}-\d{2}-\d{2}", text), f"{kind}: an ISO date in the text"
        assert not re.search(r"\b\d+\.\d{2}\b(?! ?€)", text.replace("€ ", "€")), (
            f"{kind}: an amount not in € 1.234,56 form"
        )
    assert set(seen) == set(TYPES)
    lapse = seen["application_lapsed"].get_body(("plain",)).get_content()
    assert "de dienstverlener heeft de aanvraag niet binnen 14 dagen bevestigd" in lapse
    closed = seen["project_closed"].get_body(("plain",)).get_content()
    assert (
        "eigen bijdrage wordt terugbetaald aan de onderneming" in closed
        and "steun gaat terug naar de overheid" in closed
    )
    recovery = seen["recovery_issued"].get_body(("plain",)).get_content()
    assert "Gestructureerde mededeling: +++" in recovery


if __name__ == "__main__":  # one sample of each kind (the enterprise's where both get one), for docs/notices.md
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        samples: dict[str, EmailMessage] = {}
        for kind, message in every_kind(f"sqlite:///{folder}/samples.db"):
            if kind not in samples or "peeters" in str(message["To"]):
                samples[kind] = message
    for kind in TYPES:
        message = samples[kind]
        sys.stdout.write(f"### `{kind}`\n\n```\nTo: {message['To']}\nSubject: {message['Subject']}\n\n")
        sys.stdout.write(message.get_body(("plain",)).get_content().rstrip("\n") + "\n```\n\n")


def test_a_reminder_counts_its_days_in_dutch():
    from ledger.notices.texts import render

    data = {
        "deadline": "2026-04-16",
        "amount": "1050.00",
        "subsidy": "450.00",
        "project_number": "2026-0403170701-0006",
        "enterprise_name": "Bakkerij Peeters",
        "account_name": "Financieel beheerder KMO-portefeuille",
        "account_iban": "BE71 0961 2345 6769",
        "payment_reference": "+++406/3740/03819+++",
    }
    for days, said in ((1, "Nog 1 dag:"), (2, "Nog 2 dagen:"), (7, "Nog 7 dagen:")):
        _subject, text, _html = render("own_share_reminder", data | {"days_before": days}, "enterprise")
        assert said in text and "dag(en)" not in text
