"""Fault drill: the ledger loses nothing and records nothing twice when its
server is killed (SIGKILL) at random moments under load.

It starts ``kmo-ledger serve`` (two worker processes by default, so commands
on one store also race across processes) on a fresh store, lets client threads post
commands with Idempotency-Keys, kills the server at random moments and starts
it again; clients retry every unanswered request with the same key until it
is answered. Then it checks: every command is in the ledger exactly once,
a retried key still returns its first answer, every chain and invariant
verifies, and (where projections exist) they equal a rebuild. Last, 16 clients
race applications against one enterprise's last ceiling.

``python -m scripts.fault_drill --store sqlite --clients 8 --kills 5 --cycles 3``
(CI runs a short form; a long one by hand: more cycles and kills).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx

from ledger.domain.clock import SystemClock, brussels_date
from ledger.domain.identifiers import canonical_enterprise_number
from scripts.local_server import Server

KEY = "drill-back-office-" + uuid.uuid4().hex
SME = {"fte": 10, "turnover": "1000000.00", "balance_total": "500000.00"}
EVENTS_PER_CYCLE = 6  # submitted, confirmed, deposited, topped up, ordered, executed
LIVES_PER_WALLET = 100  # each life takes 30.00 of a small SME's 7,500.00 yearly ceiling: stay well inside


def enterprise(n: int) -> str:
    base = 3_000_000 + n
    return canonical_enterprise_number(f"{base:08d}{97 - base % 97:02d}")


@dataclass
class Tally:
    sent: int = 0
    retries: int = 0
    answers: dict[str, tuple[str, str, dict, int, dict]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    """Posts one wallet's commands, each with its own Idempotency-Key, retrying
    an unanswered request with the same key until it is answered."""

    def __init__(self, number: int, server: Server, tally: Tally):
        self.number, self.server, self.tally = number, server, tally
        self.en = ""
        self.lives: dict[str, int] = {}
        """enterprise number -> application lives sent on its wallet"""
        self.http = httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
        self.count = 0

    def post(self, path: str, body: dict) -> dict:
        self.count += 1
        key = f"drill-{self.number}-{self.count}"
        with self.tally.lock:
            self.tally.sent += 1
        while True:
            try:
                response = self.http.post(self.server.url + "/v1" + path, json=body, headers={"Idempotency-Key": key})
            except httpx.HTTPError:
                with self.tally.lock:
                    self.tally.retries += 1
                time.sleep(0.2)
                continue
            if response.status_code >= 500:
                time.sleep(0.2)
                continue
            answer = response.json()
            with self.tally.lock:
                self.tally.answers[key] = (self.en, path, body, response.status_code, answer)
            if response.status_code >= 400:
                self.tally.problems.append(
                    f"{key} {path}: {response.status_code} {answer.get('code')}: {answer.get('detail')}"
                )
            return answer

    def run(self, cycles: int, today: date, chaos_over: threading.Event) -> None:
        """At least ``cycles`` application lives, and on until the kills are done;
        a new wallet every ``LIVES_PER_WALLET`` lives, before its ceiling runs out."""
        self.cycles = 0
        while self.cycles < cycles or not chaos_over.is_set():
            if not self.en or self.lives[self.en] == LIVES_PER_WALLET:
                self.en = enterprise(self.number + 1000 * len(self.lives))
                self.post("/wallets", {"enterprise_number": self.en, "name": f"Drill {self.number}", "sme": SME})
                self.lives[self.en] = 0
            self.cycles += 1
            self.lives[self.en] += 1
            application = self.post(
                f"/wallets/{self.en}/applications",
                {
                    "service": "training",
                    "provider": "DV.O207084",
                    "themes": ["digitalisation"],
                    "enrolled_on": today.isoformat(),
                    "starts_on": (today + timedelta(days=7)).isoformat(),
                    "cost_lines": [{"kind": "fee", "amount": "100.00"}],
                },
            )
            if "application_id" not in application:
                return
            base = f"/wallets/{self.en}/applications/{application['application_id']}"
            self.post(base + "/confirmation", {})
            self.post(
                base + "/deposits",
                {
                    "amount": application["own_share"],
                    "payment_reference": application["payment_reference"],
                    "value_date": today.isoformat(),
                },
            )
            self.post(base + "/top-ups", {"amount": application["subsidy"], "value_date": today.isoformat()})
            order = self.post(base + "/payout-orders", {"amount": "100.00"})
            self.post(base + "/payouts", {"order_id": order.get("order_id", "?"), "value_date": today.isoformat()})


def killer(server: Server, kills: int, over: threading.Event, low: float, high: float) -> None:
    while server.kills < kills:
        time.sleep(random.uniform(low, high))
        server.kill()
        server.restart()
    over.set()


def check(server: Server, tally: Tally, clients: list[Client]) -> dict:
    http = httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    lost = duplicated = 0
    findings = list(tally.problems)
    for en, lives in ((en, lives) for client in clients for en, lives in client.lives.items()):
        events = http.get(f"{server.url}/v1/wallets/{en}/events").json()["events"]
        expected = 1 + EVENTS_PER_CYCLE * lives
        if len(events) < expected:
            lost += expected - len(events)
            findings.append(f"{en}: {len(events)} events, {expected} expected (lost)")
        elif len(events) > expected:
            duplicated += len(events) - expected
            findings.append(f"{en}: {len(events)} events, {expected} expected (duplicated)")
        verification = http.get(f"{server.url}/v1/wallets/{en}/verification").json()
        if not verification.get("ok"):
            findings.append(f"{en}: verification failed: {verification.get('problems')}")
    # a retried key still answers with its first answer, and records nothing new
    for key, (_en, path, body, status, answer) in random.sample(
        sorted(tally.answers.items()), min(20, len(tally.answers))
    ):
        again = http.post(f"{server.url}/v1{path}", json=body, headers={"Idempotency-Key": key})
        if again.status_code != status or again.json() != answer:
            duplicated += 1
            findings.append(f"{key}: a retry answered {again.status_code}, not the first answer {status}")
    return {"lost": lost, "duplicated": duplicated, "findings": findings}


def ceiling_race(server: Server, racers: int, today: date) -> dict:
    """``racers`` clients apply at once against one enterprise's last ceiling."""
    en = enterprise(999_999)
    http = httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    http.post(f"{server.url}/v1/wallets", json={"enterprise_number": en, "name": "Race", "sme": SME})
    barrier = threading.Barrier(racers)
    outcomes: list[int] = []

    def apply() -> None:
        client = httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
        barrier.wait()
        response = client.post(
            f"{server.url}/v1/wallets/{en}/applications",
            json={
                "service": "training",
                "provider": "DV.O207084",
                "themes": ["digitalisation"],
                "enrolled_on": today.isoformat(),
                "starts_on": (today + timedelta(days=7)).isoformat(),
                "cost_lines": [{"kind": "fee", "amount": "6000.00"}],
            },
        )
        outcomes.append(response.status_code)

    threads = [threading.Thread(target=apply) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wallet = http.get(f"{server.url}/v1/wallets/{en}").json()
    ceiling = next(c for c in wallet["ceilings"] if c["year"] == today.year)
    granted = sum(float(a["subsidy"]) for a in wallet["applications"])
    return {
        "racers": racers,
        "granted": f"{granted:.2f}",
        "ceiling": ceiling["ceiling"],
        "accepted": outcomes.count(201),
        "refused": outcomes.count(422),
        "held": granted <= float(ceiling["ceiling"]) and ceiling["remaining"] >= "0",
    }


def drill(
    store: str,
    clients_count: int,
    kills: int,
    cycles: int,
    postgres_url: str,
    interval: tuple[float, float],
    workers: int = 2,
) -> dict:
    # the store, its keys and the schema go with the drill, whatever becomes of it
    with tempfile.TemporaryDirectory(prefix="kmo-drill-", ignore_cleanup_errors=True) as workdir:
        keys_file = Path(workdir) / "keys.json"
        keys_file.write_text(json.dumps({KEY: {"role": "back-office"}}))
        schema = None
        if store == "sqlite":
            database_url = f"sqlite:///{Path(workdir) / 'ledger.db'}"
        else:
            import psycopg

            schema = "drill_" + uuid.uuid4().hex[:10]
            with psycopg.connect(postgres_url, autocommit=True) as connection:
                connection.execute(f"CREATE SCHEMA {schema}")
            database_url = f"{postgres_url}?schema={schema}"
        env = dict(
            os.environ,
            KMO_LEDGER_DATABASE_URL=database_url,
            KMO_LEDGER_API_KEYS_FILE=str(keys_file),
            PYTHONPATH=str(Path(__file__).resolve().parent.parent),
        )
        server = Server(env, workdir, workers)
        try:
            server.start()
            tally = Tally()
            today = brussels_date(SystemClock().now())
            clients = [Client(n, server, tally) for n in range(clients_count)]
            chaos_over = threading.Event()
            chaos = threading.Thread(target=killer, args=(server, kills, chaos_over, *interval))
            started = time.monotonic()
            chaos.start()
            posting = [threading.Thread(target=c.run, args=(cycles, today, chaos_over)) for c in clients]
            for thread in posting:
                thread.start()
            for thread in posting:
                thread.join()
            chaos.join()
            outcome = check(server, tally, clients)
            race = ceiling_race(server, 16, today)
            server.stop()
            projections = projection_check(database_url)
        finally:
            server.stop()
            if schema:
                import psycopg

                with psycopg.connect(postgres_url, autocommit=True) as connection:
                    connection.execute(f"DROP SCHEMA {schema} CASCADE")
        return {
            "store": store,
            "workers": workers,
            "commands_sent": tally.sent,
            "crashes": server.kills,
            "retries": tally.retries,
            "lost": outcome["lost"],
            "duplicated": outcome["duplicated"],
            "findings": outcome["findings"],
            "projections": projections,
            "ceiling_race": race,
            "seconds": round(time.monotonic() - started, 1),
        }


def projection_check(database_url: str) -> list[str]:
    """Projections caught up after the crashes equal a fresh rebuild (when present)."""
    try:
        from projections.consistency import find_differences
        from projections.runner import catch_up
    except ImportError:
        return []
    from ledger.application import KmoLedger

    ledger = KmoLedger(database_url)
    try:
        catch_up(ledger, database_url)
        return find_differences(ledger, database_url)
    finally:
        ledger.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fault_drill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=3, help="application lives per client")
    parser.add_argument(
        "--interval",
        type=float,
        nargs=2,
        default=(0.3, 1.2),
        metavar=("LOW", "HIGH"),
        help="seconds between kills, drawn at random",
    )
    parser.add_argument("--workers", type=int, default=2, help="server processes (kmo-ledger serve --workers)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", action="store_true")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return 0 if exit_.code == 0 else 2
    if args.clients < 1 or args.kills < 0 or args.cycles < 1 or args.workers < 1:
        print("fault_drill: clients, cycles and workers must be at least 1, kills at least 0", file=sys.stderr)
        return 2
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    reports = [
        drill(s, args.clients, args.kills, args.cycles, args.postgres_url, tuple(args.interval), args.workers)
        for s in stores
    ]
    ok = all(
        r["lost"] == 0
        and r["duplicated"] == 0
        and not r["findings"]
        and not r["projections"]
        and r["ceiling_race"]["held"]
        and r["crashes"] >= args.kills
        for r in reports
    )
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for r in reports:
            race = r["ceiling_race"]
            print(
                f"{r['store']} ({r['workers']} workers): {r['commands_sent']} commands sent, "
                f"{r['crashes']} crashes, "
                f"{r['retries']} retries, lost {r['lost']}, duplicated {r['duplicated']}, "
                f"projection differences {len(r['projections'])}; ceiling race: {race['accepted']} of "
                f"{race['racers']} accepted, {race['granted']} granted of {race['ceiling']}; {r['seconds']} s"
            )
            for finding in r["findings"][:10] + r["projections"][:10]:
                print(f"  {finding}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
