"""Notices drill (#20): every notice due arrives at least once, whatever
happens to the notifier and the receivers.

A fresh ledger takes application lives (submitted, confirmed, own share
deposited, topped up, payout ordered and executed) for enterprises with a
contact e-mail and a provider with both a webhook and an e-mail address. Meanwhile
``kmo-ledger notify`` runs as a child process and is killed (SIGKILL) at
random moments and started again, the SMTP server is stopped for a while, and
the webhook receiver answers 500 for a while. Then every notice the events
call for (derived again here from the log, independently of the notifier's
store) must have arrived at least once, each duplicate with the same id and
content, none missing. Last, a burst of commands with nothing failing
measures the delivery lag: from the burst's last command to its last notice
arriving.

``python -m scripts.notices_drill --lives 60 --kills 4 --burst 600``
(CI runs a short form; the 10,000-command burst: ``--burst 10000``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.application import KmoLedger
from ledger.build import ledger_at
from ledger.domain import commands as c
from ledger.domain import events as ev
from ledger.domain.clock import brussels_date
from ledger.domain.money import parse_euro
from ledger.domain.rules import SmeFigures
from ledger.notices import derive
from ledger.notices.derive import Account, ProviderEntry
from ledger.notices.settings import NoticeSettings
from ledger.storage.log import notifications
from ledger.storage.topics import WALLET_EVENT_TOPICS
from projections.notifier import NoticeStore
from projections.store import ledger_url
from scripts.fault_drill import LIVES_PER_WALLET, enterprise
from scripts.notice_receivers import HookReceiver, MailBox

PROVIDER = "DV.O207084"
SECRET = "whsec_" + base64.b64encode(b"drill-secret-of-32-bytes-length!").decode()
ACTOR = ev.Actor(key_id="notices-drill", role="back-office")
SME = SmeFigures(fte=10, turnover=100_000_000, balance_total=50_000_000)


class NotifierProcess:
    """``kmo-ledger notify`` as a child process, killed and started again."""

    def __init__(self, env: dict[str, str]):
        self.env, self.process, self.kills = env, None, 0
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "scripts.cli", "notify", "--poll", "0.1"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def kill(self) -> None:
        with self.lock:
            if self.process is not None:
                self.process.kill()  # SIGKILL: no clean-up of any kind
                self.process.wait()
                self.kills += 1

    def stop(self) -> None:
        with self.lock:
            if self.process is not None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
                self.process = None


def lives(ledger: KmoLedger, count: int, first_wallet: int) -> int:
    """``count`` application lives, a wallet per ``LIVES_PER_WALLET``; returns the commands posted."""
    today = brussels_date(datetime.now(UTC))
    commands = 0
    en = ""
    for life in range(count):
        if life % LIVES_PER_WALLET == 0:
            en = enterprise(first_wallet + life // LIVES_PER_WALLET)
            ledger.open_wallet(
                c.OpenWallet(
                    enterprise_number=en, name=f"Drill {en}", sme=SME, contact_email=f"kmo{en}@drill.example.be"
                ),
                ACTOR,
            )
            commands += 1
        submitted = c.SubmitApplication(
            service="training",
            provider=PROVIDER,
            themes=("digitalisation",),
            enrolled_on=today,
            starts_on=today + timedelta(days=7),
            cost_lines=({"kind": "fee", "amount": 10000},),  # type: ignore[arg-type]
        )
        wallet, application_id = ledger.submit_application(en, submitted, ACTOR)
        application = wallet.state.applications[application_id]
        ledger.handle(en, application_id, c.ConfirmApplication(), ACTOR)
        ledger.handle(
            en,
            application_id,
            c.DepositOwnShare(
                amount=application.own_share, payment_reference=application.payment_reference, value_date=today
            ),
            ACTOR,
        )
        ledger.handle(en, application_id, c.TopUpSubsidy(amount=application.subsidy, value_date=today), ACTOR)
        _wallet, order_id = ledger.handle(en, application_id, c.OrderPayout(amount=parse_euro("100.00")), ACTOR)
        ledger.handle(en, application_id, c.ExecutePayout(order_id=order_id, value_date=today), ACTOR)
        commands += 6
    return commands


def due_notices(ledger: KmoLedger, directory: ProviderEntry, settings: NoticeSettings) -> dict[str, str]:
    """Every notice the log calls for, derived here from the events: id -> type."""
    account = Account(settings.financial_manager_iban, settings.financial_manager_name)
    due: dict[str, str] = {}
    states: dict[uuid.UUID, Any] = {}
    for notification in notifications(ledger, WALLET_EVENT_TOPICS):
        event = ledger.mapper.to_domain_event(notification)
        wallet = event.originator_id
        if wallet not in states:
            states[wallet] = ledger.wallet_state(wallet)
        for notice in derive.notices_for(
            event, states[wallet], lambda n: directory if n == PROVIDER else None, account
        ):
            due[notice.id] = notice.type
    return due


def arrived(mailbox: MailBox, hooks: HookReceiver) -> list[tuple[str, str]]:
    """(id, content) of everything that arrived, duplicates included."""
    found = [
        (notice_id, str(m.get_body(("plain",)).get_content()))
        for notice_id, m in zip(mailbox.ids(), list(mailbox.messages), strict=False)
    ]
    found += [
        (hook["headers"]["webhook-id"], json.dumps(hook["body"]["data"], sort_keys=True))
        for hook in list(hooks.received)
    ]
    return found


def wait_for(ids: set[str], mailbox: MailBox, hooks: HookReceiver, seconds: float) -> float | None:
    """Seconds until every id arrived (None: not within ``seconds``)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if ids <= set(mailbox.ids()) | set(hooks.ids()):
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def chaos(
    process: NotifierProcess,
    mailbox: MailBox,
    hooks: HookReceiver,
    kills: int,
    rng: random.Random,
    over: threading.Event,
) -> None:
    """Kill the notifier ``kills`` times; stop the SMTP server and fail the webhooks for a while between."""
    for round_ in range(kills):
        time.sleep(rng.uniform(0.3, 1.2))
        process.kill()
        if round_ == 1:
            mailbox.stop()
        if round_ == 2:
            hooks.failing = True
        time.sleep(rng.uniform(0.1, 0.5))
        process.start()
        if round_ == 1:
            time.sleep(1.5)
            mailbox.start()
        if round_ == 2:
            time.sleep(1.5)
            hooks.failing = False
    over.set()


def drill(database_url: str, lives_count: int, kills: int, burst: int, seed: int, workdir: str) -> dict[str, Any]:
    rng = random.Random(seed)
    mailbox, hooks = MailBox().start(), HookReceiver(SECRET).start()
    env = dict(os.environ)
    env.update(
        KMO_LEDGER_DATABASE_URL=database_url,
        KMO_LEDGER_SMTP_URL=mailbox.url,
        KMO_LEDGER_NOTICE_RETRY_SECONDS="0.2",
        KMO_LEDGER_NOTICE_MAX_ATTEMPTS="40",
        KMO_LEDGER_NOTICE_TIMEOUT_SECONDS="5",
        PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")])),
    )
    settings = NoticeSettings(smtp_url=mailbox.url)
    ledger = ledger_at(database_url)
    process = NotifierProcess(env)
    entry = ProviderEntry(PROVIDER, "Opleidingen Drill", "aanvragen@drill.example.be", hooks.url)
    try:
        store = NoticeStore(ledger_url(ledger))
        store.put_provider(entry, SECRET, datetime.now(UTC))
        store.close()
        process.start()
        over = threading.Event()
        troublemaker = threading.Thread(target=chaos, args=(process, mailbox, hooks, kills, rng, over), daemon=True)
        troublemaker.start()
        commands, wallets = 0, 0
        while commands == 0 or not over.is_set():  # a round of lives every half second while the chaos runs
            commands += lives(ledger, min(lives_count, LIVES_PER_WALLET), 100 + wallets)
            wallets += 1
            over.wait(0.5)
        troublemaker.join()
        due = due_notices(ledger, entry, settings)
        waited = wait_for(set(due), mailbox, hooks, 120)
        # the burst: nothing fails now; the lag runs from its last command to its last notice
        burst_started = time.monotonic()
        burst_commands = 0
        while burst_commands < burst:
            burst_commands += lives(
                ledger, min(LIVES_PER_WALLET, max(1, (burst - burst_commands) // 6)), 5000 + burst_commands
            )
        burst_posted = time.monotonic()
        due_after = due_notices(ledger, entry, settings)
        burst_ids = set(due_after) - set(due)
        lag = wait_for(burst_ids, mailbox, hooks, max(120, burst / 10))  # counted from the last command
        received = arrived(mailbox, hooks)
        counts = Counter(notice_id for notice_id, _ in received)
        contents: dict[str, set[str]] = {}
        for notice_id, content in received:
            contents.setdefault(notice_id, set()).add(content)
        return {
            "store": "postgres" if database_url.startswith("postgres") else "sqlite",
            "commands": commands,
            "kills": process.kills,
            "due": len(due_after),
            "delivered": len(set(counts) & set(due_after)),
            "arrivals": len(received),
            "duplicates": sum(n - 1 for n in counts.values()),
            "duplicates_differing": sorted(i for i, found in contents.items() if len(found) > 1),
            "lost": len(set(due_after) - set(counts)),
            "unexpected": len(set(counts) - set(due_after)),
            "chaos_settled_seconds": None if waited is None else round(waited, 2),
            "burst": {
                "commands": burst_commands,
                "notices": len(burst_ids),
                "posting_seconds": round(burst_posted - burst_started, 2),
                "lag_seconds": None if lag is None else round(lag, 2),
                "notices_per_second": None
                if lag is None
                else round(len(burst_ids) / (burst_posted - burst_started + lag)),
            },
            "by_type": dict(sorted(Counter(due_after.values()).items())),
        }
    finally:
        process.stop()
        ledger.close()
        mailbox.stop()
        hooks.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="notices_drill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--lives", type=int, default=20, help="application lives per round while the chaos runs")
    parser.add_argument(
        "--kills",
        type=int,
        default=4,
        help="SIGKILLs of the notifier (at least 3: SMTP and webhook outages ride on kills 2 and 3)",
    )
    parser.add_argument("--burst", type=int, default=300, help="commands in the burst that measures the lag")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", action="store_true")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.lives < 1 or args.kills < 3 or args.burst < 0:
        print("notices_drill: --lives at least 1, --kills at least 3, --burst not negative", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kmo-notices-drill-") as workdir:
        if args.store == "sqlite":
            url = f"sqlite:///{workdir}/ledger.db"
            report = drill(url, args.lives, args.kills, args.burst, args.seed, workdir)
        else:
            report = _on_postgres(args, workdir)
    ok = report["lost"] == 0 and report["unexpected"] == 0 and not report["duplicates_differing"]
    report["ok"] = ok
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))
    return 0 if ok else 1


def _on_postgres(args: argparse.Namespace, workdir: str) -> dict[str, Any]:
    import psycopg

    schema = "notices_drill_" + uuid.uuid4().hex[:8]
    with psycopg.connect(args.postgres_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        return drill(f"{args.postgres_url}?schema={schema}", args.lives, args.kills, args.burst, args.seed, workdir)
    finally:
        with psycopg.connect(args.postgres_url, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    sys.exit(main())
