"""``kmo-ledger bench``: speed targets as ratios of two measurements taken in
the same run, so they hold on a noisy machine.

Measured here: the store's raw durable insert rate (one row per transaction)
against the ledger's command rate; a command on a 10-event wallet against one
on a 10,000-event wallet; an auditor's replay of a 10,000-event wallet as of a
date against reading its rows raw. Targets are printed beside each figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain.clock import SystemClock, brussels_date
from ledger.domain.events import Actor
from ledger.domain.identifiers import wallet_id
from ledger.domain.money import format_euro, parse_euro
from ledger.idempotency import Idempotency
from ledger.summaries import application_summary, wallet_summary

ACTOR = Actor(key_id="bench", role="back-office")
SME = {"fte": 10, "turnover": "1000000.00", "balance_total": "500000.00"}


# enterprise numbers with valid checksums: base * 100 + (97 - base % 97)
def enterprise(n: int) -> str:
    base = 1_000_000 + n
    return f"{base:08d}{97 - base % 97:02d}"


@dataclass
class Figure:
    name: str
    measured: float
    baseline: float
    ratio: float
    target: str
    met: bool
    unit: str
    detail: str = ""
    """What else a figure was made of (e.g. each round's ratio), in the JSON only."""


class Store:
    """A throw-away store of the chosen engine."""

    def __init__(self, engine: str, postgres_url: str):
        self.engine = engine
        self.postgres_url = postgres_url.split("?")[0]
        self.folder = tempfile.mkdtemp(prefix="kmo-bench-")
        self.schemas: list[str] = []

    def url(self) -> str:
        if self.engine == "sqlite":
            return f"sqlite:///{Path(self.folder) / (uuid.uuid4().hex + '.db')}"
        import psycopg

        schema = "bench_" + uuid.uuid4().hex[:10]
        with psycopg.connect(self.postgres_url, autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {schema}")
        self.schemas.append(schema)
        return f"{self.postgres_url}?schema={schema}"

    def raw_insert_rate(self, count: int) -> float:
        payload = b"x" * 400
        if self.engine == "sqlite":
            connection = sqlite3.connect(Path(self.folder) / "raw.db", isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, version INTEGER, data BLOB)")
            started = time.perf_counter()
            for i in range(count):
                connection.execute("BEGIN")
                connection.execute("INSERT INTO raw (version, data) VALUES (?, ?)", (i, payload))
                connection.execute("COMMIT")
            elapsed = time.perf_counter() - started
            connection.close()
            return count / elapsed
        import psycopg

        schema = self.url().split("schema=")[1]
        with psycopg.connect(self.postgres_url, autocommit=True) as connection:
            connection.execute(f"CREATE TABLE {schema}.raw (id BIGSERIAL PRIMARY KEY, version INTEGER, data BYTEA)")
            started = time.perf_counter()
            for i in range(count):
                with connection.transaction():
                    connection.execute(f"INSERT INTO {schema}.raw (version, data) VALUES (%s, %s)", (i, payload))
            return count / (time.perf_counter() - started)

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)
        if self.schemas:
            import psycopg

            with psycopg.connect(self.postgres_url, autocommit=True) as connection:
                for schema in self.schemas:
                    connection.execute(f"DROP SCHEMA {schema} CASCADE")


def timed(action: Callable[[], object], repeat: int) -> float:
    """Seconds per call, the best of three rounds of ``repeat`` calls."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeat):
            action()
        best = min(best, (time.perf_counter() - started) / repeat)
    return best


def application_life(ledger: KmoLedger, en: str, today: date, keyed: bool = False) -> int:
    """Open a wallet and take one training through its life: 7 commands.

    ``keyed``: each command carries an Idempotency-Key, as every POST of the
    HTTP bench does, and stores its answer (the wallet or application view the
    API sends) with its events, so the in-process figure does the same ledger
    work as the HTTP one."""
    keys = _Keys(today) if keyed else None

    def options(command: Any, render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        return {} if keys is None else {"idempotency": keys.idempotency(command, render)}

    def on_application(application_id: str) -> Callable[[Any], dict[str, Any]]:
        return lambda result: application_summary(result[0].application(application_id))

    opening = c.OpenWallet(enterprise_number=en, name="Bench", sme=SME)
    ledger.open_wallet(opening, ACTOR, **options(opening, keys.wallet if keys else None))
    submission = c.SubmitApplication(
        service="training",
        provider="DV.O207084",
        themes=("digitalisation",),
        enrolled_on=today,
        starts_on=today + timedelta(days=7),
        cost_lines=({"kind": "fee", "amount": "1000.00"},),
    )
    wallet, application_id = ledger.submit_application(
        en,
        submission,
        ACTOR,
        **options(submission, lambda result: application_summary(result[0].application(result[1]))),
    )
    application = wallet.state.applications[application_id]
    view = {
        "own_share": format_euro(application.own_share),
        "subsidy": format_euro(application.subsidy),
        "payment_reference": application.payment_reference,
    }
    answer = on_application(application_id)
    ledger.handle(en, application_id, c.ConfirmApplication(), ACTOR, **options(None, answer))
    deposit = c.DepositOwnShare(
        amount=parse_euro(view["own_share"]), payment_reference=view["payment_reference"], value_date=today
    )
    ledger.handle(en, application_id, deposit, ACTOR, **options(deposit, answer))
    top_up = c.TopUpSubsidy(amount=parse_euro(view["subsidy"]), value_date=today)
    ledger.handle(en, application_id, top_up, ACTOR, **options(top_up, answer))
    order = c.OrderPayout(amount=parse_euro("1000.00"))
    _w, order_id = ledger.handle(
        en,
        application_id,
        order,
        ACTOR,
        **options(order, lambda result: {"order_id": result[1], "application": answer(result)}),
    )
    payout = c.ExecutePayout(order_id=order_id, value_date=today)
    ledger.handle(en, application_id, payout, ACTOR, **options(payout, answer))
    return 7


class _Keys:
    """Idempotency-Keys for in-process commands, as the API makes them: a new
    key per command, the SHA-256 of its body, the answer stored as JSON."""

    def __init__(self, today: date):
        self.today = today

    def wallet(self, wallet: Any) -> dict[str, Any]:
        return wallet_summary(wallet.state, wallet.version, self.today)

    def idempotency(self, command: Any, render: Callable[[Any], dict[str, Any]]) -> Idempotency:
        body = b"" if command is None else orjson.dumps(command.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return Idempotency(
            "bench", uuid.uuid4().hex, hashlib.sha256(body).hexdigest(), lambda result: (200, render(result))
        )


class _Connection:
    """One kept-alive HTTP/1.1 connection of a lean load generator: requests
    written as bytes, answers parsed by httptools (uvicorn's own C parser). The
    standard library's client spent about as much CPU per request as the
    server, on the same two cores, so it paced the figure it was to measure."""

    def __init__(self, port: int, headers: dict[str, str]):
        import socket

        import httptools

        self._socket = socket.create_connection(("127.0.0.1", port), timeout=60)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._body: list[bytes] = []
        self._complete = False
        self._parser = httptools.HttpResponseParser(self)

    # httptools callbacks
    def on_body(self, chunk: bytes) -> None:
        self._body.append(chunk)

    def on_message_complete(self) -> None:
        self._complete = True

    def post(self, path: str, body: dict, headers: str = "") -> tuple[int, bytes]:
        """``headers``: this request's own, each line ending in CRLF."""
        payload = orjson.dumps(body)
        self._socket.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self._head}{headers}"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        self._body, self._complete = [], False
        while not self._complete:
            data = self._socket.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self._parser.feed_data(data)
        return self._parser.get_status_code(), b"".join(self._body)

    def close(self) -> None:
        self._socket.close()


class Client:
    """A back-office client of the bench: posts over a kept-alive connection
    and can start a new one (``reconnect``), as a service does per batch of
    work; ``keyed``: each POST with an Idempotency-Key of its own."""

    def __init__(self, port: int, headers: dict[str, str], keyed: bool = True):
        self.port, self.headers, self.keyed, self.sent = port, headers, keyed, 0
        self._connection = _Connection(port, headers)

    def post(self, path: str, body: dict) -> dict:
        self.sent += 1
        key = f"Idempotency-Key: {uuid.uuid4().hex}\r\n" if self.keyed else ""
        status, answer = self._connection.post(path, body, key)
        if status >= 400:
            raise RuntimeError(f"{path}: {status} {answer[:200]!r}")
        return orjson.loads(answer)

    def reconnect(self) -> None:
        self._connection.close()
        self._connection = _Connection(self.port, self.headers)

    def close(self) -> None:
        self._connection.close()


def _client(
    port: int,
    headers: dict[str, str],
    keyed: bool,
    life: Callable[[Client, int], None],
    number: int,
    ready: Any,
    results: Any,
) -> None:
    """One client process sending what ``life(client, number)`` sends, from when
    every client is ready."""
    try:
        client = Client(port, headers, keyed)
    except Exception as error:
        ready.abort()  # the others (and the bench) stop waiting for this one
        results.put((0, f"client {number} could not connect: {error}"))
        return
    try:
        ready.wait()
        life(client, number)
        results.put((client.sent, None))
    except Exception as error:  # reported once all clients are done
        results.put((client.sent, str(error)))
    finally:
        client.close()


LOAD_TIMEOUT = 600
"""Seconds a load may take before the bench gives up on its clients."""


def _load(
    port: int, clients: int, life: Callable[[Client, int], None], headers: dict[str, str], keyed: bool = True
) -> float:
    """Requests per second from ``clients`` client processes, as separate
    back-office services would send them (client threads of one process
    would queue for its interpreter lock and pace the server instead).
    ``life`` must be picklable: a module-level function or a partial of one."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(clients + 1)
    results = context.Queue()
    processes = [
        context.Process(target=_client, args=(port, headers, keyed, life, n, ready, results)) for n in range(clients)
    ]
    import queue
    import threading

    for process in processes:
        process.start()
    try:
        ready.wait(LOAD_TIMEOUT)  # every client started and connected: the clock starts
    except threading.BrokenBarrierError:
        pass  # a client could not connect: its answer says why
    started = time.perf_counter()
    try:
        outcomes = [results.get(timeout=LOAD_TIMEOUT) for _ in processes]
    except queue.Empty:
        outcomes = [(0, f"a client gave no answer within {LOAD_TIMEOUT} s")]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join(10)
        if process.is_alive():
            process.kill()
    failures = [error for _sent, error in outcomes if error]
    if failures:
        raise RuntimeError(f"an HTTP client failed: {failures[0]}")
    return sum(sent for sent, _error in outcomes) / elapsed


def _application_lives(today: date, first: int, lives: int, client: Client, number: int) -> None:
    """What one back-office client sends: ``lives`` wallets, each opened and one
    training taken through its life (7 commands), each wallet's commands on a
    connection of its own. (Eight connections kept for the whole run are
    shared out between the server's processes once, by whichever accepts
    first: one process got six of them in some runs and the figure measured
    that; a connection per wallet lets the less busy process take the next.)"""
    post = client.post
    for life in range(first, first + lives):
        if life > first:
            client.reconnect()
        en = enterprise(500_000 + number * 10_000 + life)
        post("/v1/wallets", {"enterprise_number": en, "name": "Bench", "sme": SME})
        application = post(
            f"/v1/wallets/{en}/applications",
            {
                "service": "training",
                "provider": "DV.O207084",
                "themes": ["digitalisation"],
                "enrolled_on": today.isoformat(),
                "starts_on": (today + timedelta(days=7)).isoformat(),
                "cost_lines": [{"kind": "fee", "amount": "1000.00"}],
            },
        )
        base = f"/v1/wallets/{en}/applications/{application['application_id']}"
        post(base + "/confirmation", {})
        post(
            base + "/deposits",
            {
                "amount": application["own_share"],
                "value_date": today.isoformat(),
                "payment_reference": application["payment_reference"],
            },
        )
        post(base + "/top-ups", {"amount": application["subsidy"], "value_date": today.isoformat()})
        order = post(base + "/payout-orders", {"amount": "1000.00"})
        post(base + "/payouts", {"order_id": order["order_id"], "value_date": today.isoformat()})


def _floor_requests(today: date, lives: int, client: Client, _number: int) -> None:
    """The floor's requests, on a connection per seven (as the lives have)."""
    for life in range(lives):
        if life:
            client.reconnect()
        for _ in range(7):
            client.post("/floor", {"amount": "1000.00", "value_date": today.isoformat()})


def server_workers() -> int:
    """Server processes for the HTTP figures: one per core, as deployed."""
    import os

    return max(1, min(os.cpu_count() or 1, 8))


@dataclass(frozen=True)
class HttpRates:
    """Commands per second: over HTTP and in one process, with and without keys."""

    http: float
    in_process: float
    floor: float
    http_without_keys: float
    in_process_without_keys: float


def http_command_rate(
    store: Store, today: date, lives_per_client: int, clients: int = 8, workers: int = 1
) -> HttpRates:
    """Commands per second through ``kmo-ledger serve --workers`` with
    concurrent clients (each POST with an Idempotency-Key, as back-office
    clients send); the same application lives in one process, one command at
    a time and each with its key too, on a fresh store of the same engine
    (the same ledger work on both sides: the ratio is the HTTP stack's and
    the concurrency's cost); and the HTTP stack's floor
    (:mod:`scripts.bench_floor`, as many workers) burning that in-process
    time per request, under the same clients. Also both rates of the same
    lives without keys (less ledger work per command on both sides)."""
    import os
    import subprocess

    from scripts.local_server import Server, free_port, stop_session, wait_until_up

    url = store.url()
    key = "bench-" + uuid.uuid4().hex
    keys_file = Path(store.folder) / "keys.json"
    keys_file.write_text(json.dumps({key: {"role": "back-office"}}))
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, KMO_LEDGER_DATABASE_URL=url, KMO_LEDGER_API_KEYS_FILE=str(keys_file), PYTHONPATH=root)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    server = Server(env, store.folder, workers)
    server.start()
    try:
        # one life per client first, uncounted: the server's first requests
        # import and warm what every later one reuses
        _load(server.port, clients, partial(_application_lives, today, 5_000, 1), headers)
        http_rate = _load(server.port, clients, partial(_application_lives, today, 0, lives_per_client), headers)
        http_without_keys = _load(
            server.port, clients, partial(_application_lives, today, 2_000, lives_per_client), headers, keyed=False
        )
    finally:
        server.stop()

    ledger = KmoLedger(store.url())
    application_life(ledger, enterprise(699_999), today, keyed=True)  # warm, as the server was
    started = time.perf_counter()
    commands = sum(
        application_life(ledger, enterprise(700_000 + i), today, keyed=True) for i in range(clients * lives_per_client)
    )
    in_process = commands / (time.perf_counter() - started)
    started = time.perf_counter()
    commands = sum(application_life(ledger, enterprise(710_000 + i), today) for i in range(clients * lives_per_client))
    unkeyed = commands / (time.perf_counter() - started)
    ledger.close()

    port = free_port()
    floor_env = dict(env, KMO_LEDGER_BENCH_BURN=str(1 / in_process))
    floor_server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import uvicorn; uvicorn.run('scripts.bench_floor:app', host='127.0.0.1', port={port}, workers={workers})",
        ],
        env=floor_env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # access log on, as serve has it
    try:
        wait_until_up(f"http://127.0.0.1:{port}/openapi.json")
        _load(port, clients, partial(_floor_requests, today, 1), headers)
        floor_rate = _load(port, clients, partial(_floor_requests, today, lives_per_client), headers)
    finally:
        stop_session(floor_server)
    return HttpRates(http_rate, in_process, floor_rate, http_without_keys, unkeyed)


def grow(ledger: KmoLedger, en: str, events: int) -> None:
    ledger.open_wallet(c.OpenWallet(enterprise_number=en, name="Long", sme=SME), ACTOR)
    for i in range(events - 1):
        ledger.file_sme_figures(en, c.FileSmeFigures(year=2000 + i % 26, sme=SME), ACTOR)


def measure(engine: str, postgres_url: str, scale: float, progress: Callable[[str], None]) -> list[Figure]:
    store = Store(engine, postgres_url)
    figures: list[Figure] = []
    try:
        progress("raw insert rate and command rate")
        ledger = KmoLedger(store.url())
        today = brussels_date(SystemClock().now())
        # warm first (uncounted, as for HTTP: the first commands import and
        # build what every later one reuses); then five rounds of raw inserts
        # then commands, side by side, and the round with the median ratio: a
        # burst of noise on a shared machine skews one round, not the figure
        for i in range(10):
            application_life(ledger, enterprise(800_000 + i), today)
        store.raw_insert_rate(50)
        rounds = []
        inserts, wallets = max(50, int(400 * scale)), max(6, int(60 * scale))
        for round_ in range(5):
            raw = store.raw_insert_rate(inserts)
            started = time.perf_counter()
            first = round_ * wallets
            commands = sum(application_life(ledger, enterprise(i), today) for i in range(first, first + wallets))
            command_rate = commands / (time.perf_counter() - started)
            rounds.append((command_rate / raw, command_rate, raw))
        ratio, command_rate, raw = sorted(rounds)[2]
        target = 0.6 if engine == "sqlite" else 0.5
        figures.append(
            Figure(
                "command rate / raw insert rate (median of 5 rounds)",
                command_rate,
                raw,
                ratio,
                f">= {target}",
                ratio >= target,
                "per second",
            )
        )

        workers = server_workers()
        progress(f"HTTP with 8 clients, {workers} server processes")
        rates = http_command_rate(store, today, max(4, int(20 * scale)), workers=workers)
        ratio = rates.http / rates.in_process
        figures.append(
            Figure(
                f"HTTP command rate (8 clients, {workers} server processes) / in-process command rate"
                " (both with Idempotency-Keys)",
                rates.http,
                rates.in_process,
                ratio,
                ">= 0.5",
                ratio >= 0.5,
                "per second",
            )
        )
        figures.append(
            Figure(
                "the same, both without Idempotency-Keys (no answer stored)",
                rates.http_without_keys,
                rates.in_process_without_keys,
                rates.http_without_keys / rates.in_process_without_keys,
                "informative",
                True,
                "per second",
            )
        )
        figures.append(
            Figure(
                "HTTP stack floor (the same, a route burning one in-process command) / in-process",
                rates.floor,
                rates.in_process,
                rates.floor / rates.in_process,
                "informative",
                True,
                "per second",
            )
        )

        progress("long wallet")
        long_events = max(500, int(10_000 * scale))
        short, long_ = enterprise(900_001), enterprise(900_002)
        grow(ledger, short, 10)
        grow(ledger, long_, long_events)
        filing = c.FileSmeFigures(year=2025, sme=SME)
        short_cost = timed(lambda: ledger.file_sme_figures(short, filing, ACTOR), 50)
        long_cost = timed(lambda: ledger.file_sme_figures(long_, filing, ACTOR), 50)
        figures.append(
            Figure(
                f"command on {long_events}-event wallet / on 10-event wallet",
                long_cost,
                short_cost,
                long_cost / short_cost,
                "<= 1.5",
                long_cost / short_cost <= 1.5,
                "seconds",
            )
        )
        cold = KmoLedger(
            ledger.env.get("SQLITE_DBNAME")
            and f"sqlite:///{ledger.env.get('SQLITE_DBNAME')}"
            or f"{store.postgres_url}?schema={ledger.env.get('POSTGRES_SCHEMA')}"
        )
        cold_long = timed(lambda: (cold._forget(wallet_id(long_)), cold.get_wallet(long_)), 5)
        cold_short = timed(lambda: (cold._forget(wallet_id(short)), cold.get_wallet(short)), 5)
        figures.append(
            Figure(
                f"cold load of {long_events}-event wallet / of 10-event wallet (snapshots)",
                cold_long,
                cold_short,
                cold_long / cold_short,
                "informative",
                True,
                "seconds",
            )
        )

        progress("replay as of a date")
        as_of = today
        raw_read = timed(lambda: list(ledger.recorder.select_events(wallet_id(long_))), 3)
        replay = timed(lambda: ledger.replay(long_, as_of), 3)
        figures.append(
            Figure(
                f"replay of {long_events}-event wallet as of a date / raw read of its rows",
                replay,
                raw_read,
                replay / raw_read,
                "<= 3",
                replay / raw_read <= 3,
                "seconds",
            )
        )
        progress("console: the first page of the long wallet")
        figures.append(console_page_figure(cold_url(ledger, store), long_, long_events))
        cold.close()
        ledger.close()

        progress("a large ledger: rebuild and verification")
        figures += scale_figures(store, max(20_000, int(1_000_000 * scale)), progress)
    finally:
        store.close()
    return figures


def raw_notification_rate(url: str) -> tuple[int, float]:
    """Read every stored row of the notification log, in batches, decoding nothing."""
    ledger = KmoLedger(url)
    try:
        count, start, started = 0, 1, time.perf_counter()
        while True:
            batch = ledger.recorder.select_notifications(start, 5000)
            if not batch:
                break
            count += len(batch)
            start = batch[-1].id + 1
        return count, count / (time.perf_counter() - started)
    finally:
        ledger.close()


def in_child(code: str, url: str) -> tuple[dict, int]:
    """Run ``code`` in a fresh interpreter; its JSON answer and peak memory
    (bytes): its own, plus ``result['workers']`` times its largest child's."""
    import os
    import subprocess

    env = dict(os.environ, KMO_LEDGER_DATABASE_URL=url, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    wrapped = (
        "import json, resource, sys\n" + code +
        # the peak of this process since it started (VmHWM: getrusage's own
        # maximum would also count the bench's memory from before the exec)
        "\nhwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]"
        "\nresult['peak'] = int(hwm.split()[1]) * 1024"
        # worker processes run side by side: count each at the largest one's peak
        "\nchildren = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024"
        "\nresult['peak'] += result.get('workers', 0) * children\nprint(json.dumps(result))"
    )
    done = subprocess.run([sys.executable, "-c", wrapped], env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result, result["peak"]


def tree_rss(pid: int) -> int:
    """The resident memory (bytes) of process ``pid`` and every process below it, now."""
    import os

    page = os.sysconf("SC_PAGE_SIZE")
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * page
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
    inside, grew = {pid}, True
    while grew:
        below = {child for child, parent in parents.items() if parent in inside} - inside
        grew = bool(below)
        inside |= below
    return sum(rss.get(member, 0) for member in inside)


SAMPLE_EVERY = 0.05
"""Seconds between two samples of a process tree's memory."""


def in_child_sampled(code: str, url: str) -> tuple[dict, int]:
    """As :func:`in_child`, with the peak memory (bytes) measured as the largest
    sum of the resident memory of the child and every process it started
    (its workers), sampled every :data:`SAMPLE_EVERY` seconds while it runs."""
    import os
    import subprocess
    import threading

    env = dict(os.environ, KMO_LEDGER_DATABASE_URL=url, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    wrapped = "import json\n" + code + "\nprint(json.dumps(result))"
    child = subprocess.Popen(
        [sys.executable, "-c", wrapped], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0

    def sample() -> None:
        nonlocal peak
        while child.poll() is None:
            peak = max(peak, tree_rss(child.pid))
            time.sleep(SAMPLE_EVERY)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = child.communicate()
    sampler.join()
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, child.args, out, err)
    return json.loads(out.strip().splitlines()[-1]), peak


CONSOLE_BUDGET = 0.300
"""The console's first page of a 10,000-event wallet, in seconds of server time (#19)."""
CONSOLE_RENDERS = 7


def cold_url(ledger: KmoLedger, store: Store) -> str:
    """The database URL of ``ledger``'s store, for another process to open."""
    sqlite = ledger.env.get("SQLITE_DBNAME")
    return f"sqlite:///{sqlite}" if sqlite else f"{store.postgres_url}?schema={ledger.env.get('POSTGRES_SCHEMA')}"


def console_page_figure(url: str, en: str, events: int) -> Figure:
    """Server time of the console's first page of a wallet of ``events`` events
    (``/console/wallets/{en}``: summary, ceilings, applications, the first 50
    events of the timeline with their balances, the held-money chart), rendered
    through the ASGI app in a fresh interpreter: the median of
    :data:`CONSOLE_RENDERS` renders after one uncounted (which catches the read
    models up). Judged in absolute time against :data:`CONSOLE_BUDGET`; the
    ratio is to the median time of the same wallet's ``GET /v1/wallets/{en}``."""
    timings, _peak = in_child(
        "import json, os, shutil, statistics, tempfile, time\n"
        "from pathlib import Path\n"
        "from fastapi.testclient import TestClient\n"
        "from api import create_app\n"
        "from api.settings import Settings\n"
        "folder = Path(tempfile.mkdtemp(prefix='kmo-bench-console-'))\n"
        "key = 'bench-console-0123456789abcdef'\n"
        "(folder / 'keys.json').write_text(json.dumps({key: {'role': 'auditor'}}))\n"
        "settings = Settings(database_url=os.environ['KMO_LEDGER_DATABASE_URL'], api_keys_file=folder / 'keys.json')\n"
        "def median(client, path, **options):\n"
        "    client.get(path, **options)\n"
        "    seconds = []\n"
        f"    for _ in range({CONSOLE_RENDERS}):\n"
        "        started = time.perf_counter()\n"
        "        answer = client.get(path, **options)\n"
        "        seconds.append(time.perf_counter() - started)\n"
        "        assert answer.status_code == 200, answer.text[:300]\n"
        "    return statistics.median(seconds)\n"
        "with TestClient(create_app(settings), base_url='http://127.0.0.1') as client:\n"
        "    client.post('/console/sign-in', data={'key': key}, headers={'Origin': 'http://127.0.0.1'})\n"
        f"    page = median(client, '/console/wallets/{en}')\n"
        f"    api = median(client, '/v1/wallets/{en}', headers={{'Authorization': 'Bearer ' + key}})\n"
        "shutil.rmtree(folder, ignore_errors=True)\n"
        "result = {'page': page, 'api': api}",
        url,
    )
    page, api = timings["page"], timings["api"]
    return Figure(
        f"console: first page of a {events}-event wallet, server time in process (median of {CONSOLE_RENDERS})"
        " / GET /v1/wallets/{en} of it",
        page,
        api,
        page / api,
        f"page < {CONSOLE_BUDGET * 1000:.0f} ms (absolute)",
        page < CONSOLE_BUDGET,
        "seconds",
        detail=f"page {page * 1000:.1f} ms, API wallet read {api * 1000:.1f} ms",
    )


REBUILD_ROUNDS = 3


def scale_figures(store: Store, events: int, progress: Callable[[str], None]) -> list[Figure]:
    """Rebuild and verification of a ledger of ``events`` events against its raw read rate."""
    from scripts.seed import seed

    url = store.url()
    ledger = KmoLedger(url)
    seed(ledger, events)
    ledger.close()
    # side by side, in fresh interpreters (both start with an empty heap):
    # the raw read, then the rebuild, three times; the round with the median
    # ratio (a burst of noise on a shared machine skews one round, not the
    # figure). The first rebuild folds a ledger never folded; the next two
    # replace views that exist, as `kmo-ledger rebuild-projections` does.
    rounds, peak = [], 0
    for round_ in range(REBUILD_ROUNDS):
        progress(f"rebuild, round {round_ + 1} of {REBUILD_ROUNDS}")
        raw, _peak = in_child(
            "import os\nfrom scripts.bench import raw_notification_rate\n"
            "count, rate = raw_notification_rate(os.environ['KMO_LEDGER_DATABASE_URL'])\n"
            "result = {'count': count, 'rate': rate}",
            url,
        )
        rebuild, round_peak = in_child(
            "import os\nfrom projections import rebuild\nfrom projections.runner import MAX_WORKERS\n"
            "applied, seconds = rebuild(os.environ['KMO_LEDGER_DATABASE_URL'])\n"
            # this process folds too, beside one worker process fewer
            "result = {'applied': applied, 'seconds': seconds,\n"
            "          'workers': min(os.cpu_count() or 1, MAX_WORKERS) - 1}",
            url,
        )
        rate = rebuild["applied"] / rebuild["seconds"]
        rounds.append((rate / raw["rate"], rate, raw["rate"]))
        peak = max(peak, round_peak)
    count = raw["count"]
    by_round = "ratios by round: " + ", ".join(f"{r[0]:.2f}" for r in rounds)
    progress(f"rebuild {by_round}")
    ratio, rate, raw_rate = sorted(rounds)[len(rounds) // 2]
    figures = [
        Figure(
            f"projection rebuild rate / raw notification read rate ({count} events, median of {REBUILD_ROUNDS} rounds)",
            rate,
            raw_rate,
            ratio,
            ">= 0.5",
            ratio >= 0.5,
            "events per second",
            by_round,
        )
    ]
    figures.append(peak_figure("the rebuild", count, peak))
    progress("verification")
    verify, _peak = in_child(
        "import time\nfrom scripts.verify import main\nimport contextlib, io\n"
        "started = time.perf_counter()\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    code = main(['--json'])\n"
        "result = {'code': code, 'seconds': time.perf_counter() - started}",
        url,
    )
    rate = count / verify["seconds"]
    figures.append(
        Figure(
            f"verification rate / raw notification read rate ({count} events)",
            rate,
            raw_rate,
            rate / raw_rate,
            "informative",
            verify["code"] == 0,
            "events per second",
        )
    )
    return figures


# ---------------------------------------------------------------------- verification at scale (--verify-events)

PROOF_SAMPLES = 200
RAW_READ = (
    "import os\nfrom scripts.bench import raw_notification_rate\n"
    "count, rate = raw_notification_rate(os.environ['KMO_LEDGER_DATABASE_URL'])\n"
    "result = {'count': count, 'rate': rate}"
)
"""In a fresh interpreter: the raw read rate of the notification log (:func:`raw_notification_rate`)."""


def timed_command(module: str, args: list[str]) -> str:
    """In a fresh interpreter: ``module``'s ``main(args)``, its exit code and seconds (its output dropped)."""
    return (
        f"import time, contextlib, io\nfrom {module} import main\n"
        "started = time.perf_counter()\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    code = main({args!r})\n"
        "result = {'code': code, 'seconds': time.perf_counter() - started}"
    )


CAUGHT_UP = (
    "import os, time\nfrom projections.runner import catch_up\nstarted = time.perf_counter()\n"
    "catch_up(os.environ['KMO_LEDGER_DATABASE_URL'])\nresult = {'seconds': time.perf_counter() - started}"
)
"""In a fresh interpreter: the read models brought up to date with the log (as the server keeps them)."""


def peak_figure(what: str, count: int, peak: int, how: str = "its workers included") -> Figure:
    megabytes = peak / 1e6
    return Figure(
        f"peak memory of {what}, {how} ({count} events), MB",
        megabytes,
        250,
        megabytes / 250,
        "< 250 MB",
        megabytes < 250,
        "MB",
    )


def verify_figures(store: Store, events: int, progress: Callable[[str], None]) -> list[Figure]:
    """The whole of ``kmo-ledger verify`` (chains, invariants, snapshots, the
    Merkle tree against a signed checkpoint, read models) on a ledger of
    ``events`` events (the read models caught up first, untimed, as a running
    server keeps them), against the raw read rate of its notification log; its
    peak memory (its processes' resident memory added up, sampled); and an
    inclusion proof's time at that size."""
    import os

    from scripts.seed import seed

    url = store.url()
    progress(f"seeding {events} events")
    ledger = KmoLedger(url)
    seed(ledger, events)
    ledger.close()
    # the children's key pair in the store's folder, gone with it; set for them only
    # (left set, the next checkpoint taken in this process would write its keys there)
    key_file = os.environ.get("KMO_LEDGER_CHECKPOINT_KEY_FILE")
    os.environ["KMO_LEDGER_CHECKPOINT_KEY_FILE"] = str(Path(store.folder) / "checkpoint-key.pem")
    try:
        return _verify_figures(url, events, progress)
    finally:
        if key_file is None:
            del os.environ["KMO_LEDGER_CHECKPOINT_KEY_FILE"]
        else:
            os.environ["KMO_LEDGER_CHECKPOINT_KEY_FILE"] = key_file


def _verify_figures(url: str, events: int, progress: Callable[[str], None]) -> list[Figure]:
    progress("raw read of the notification log")
    raw, _ = in_child(RAW_READ, url)
    progress("a signed checkpoint (the stored tree built from nothing)")
    taken, _ = in_child(timed_command("scripts.checkpoint", []), url)
    progress("the read models caught up (as a running server keeps them)")
    caught_up, _ = in_child(CAUGHT_UP, url)
    progress("verify")
    verified, peak = in_child_sampled(timed_command("scripts.verify", ["--json"]), url)
    progress("inclusion proofs")
    proofs, _ = in_child(
        "import os, random, statistics, time\nfrom ledger.application import KmoLedger\n"
        "from ledger.audit.checkpoints import inclusion\n"
        "ledger = KmoLedger(os.environ['KMO_LEDGER_DATABASE_URL'])\n"
        f"rows = ledger.recorder.select_notifications(1, {events})\n"
        f"picked = random.Random(7).sample(rows, min({PROOF_SAMPLES}, len(rows)))\n"
        "times = []\n"
        "for row in picked:\n"
        "    started = time.perf_counter()\n"
        "    inclusion(ledger, str(row.originator_id), row.originator_version)\n"
        "    times.append(time.perf_counter() - started)\n"
        "ledger.close()\n"
        "result = {'median': statistics.median(times), 'worst': max(times)}",
        url,
    )
    count, raw_rate = raw["count"], raw["rate"]
    rate = count / verified["seconds"]
    return [
        Figure(
            f"verify (chains, invariants, tree against a signed checkpoint, read models) / raw read ({count} events)",
            rate,
            raw_rate,
            rate / raw_rate,
            ">= 0.5",
            verified["code"] == 0 and rate / raw_rate >= 0.5,
            "events per second",
            f"verify took {verified['seconds']:.1f} s; exit {verified['code']}; the checkpoint before it "
            f"{taken['seconds']:.1f} s, the read models caught up before it {caught_up['seconds']:.1f} s",
        ),
        peak_figure("verify", count, peak, "all its processes together"),
        Figure(
            f"inclusion proof of one event, median of {PROOF_SAMPLES} ({count} events), ms",
            proofs["median"] * 1000,
            1000 * proofs["worst"],
            proofs["median"] / proofs["worst"] if proofs["worst"] else 0.0,
            "informative",
            True,
            "ms (baseline: the worst)",
        ),
    ]


# ---------------------------------------------------------------------- reconciliation (--reconcile)

RECONCILE_SIZES = (2_000, 16_000, 128_000)
STATEMENT_BYTES = 200_000_000

_CAMT_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>BENCH-2026-03</MsgId><CreDtTm>2026-04-01T06:00:00+02:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>BE68539007547034-2026-03</Id>
      <ElctrncSeqNb>3</ElctrncSeqNb>
      <FrToDt><FrDtTm>2026-03-01T00:00:00+01:00</FrDtTm><ToDtTm>2026-03-31T23:59:59+02:00</ToDtTm></FrToDt>
      <Acct><Id><IBAN>BE68539007547034</IBAN></Id><Ccy>EUR</Ccy><Nm>KMO-portefeuille financieel beheerder</Nm></Acct>
"""
_STRUCTURED = (
    "<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry><Issr>BBA</Issr></Tp>"
    "<Ref>{reference}</Ref></CdtrRefInf></Strd>"
)
_CAMT_TAIL = """    </Stmt>
  </BkToCstmrStmt>
</Document>
"""
_CAMT_ENTRY = """      <Ntry>
        <NtryRef>{id}</NtryRef>
        <Amt Ccy="EUR">{amount}</Amt>
        <CdtDbtInd>{direction}</CdtDbtInd>
        <RvslInd>false</RvslInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>{day}</Dt></BookgDt>
        <ValDt><Dt>{day}</Dt></ValDt>
        <AcctSvcrRef>{day}-{id}</AcctSvcrRef>
        <BkTxCd>
          <Domn><Cd>PMNT</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn>
          <Prtry><Cd>01500000</Cd><Issr>BBA</Issr></Prtry>
        </BkTxCd>
        <NtryDtls>
          <TxDtls>
            <Refs><MsgId>MSG-{id}</MsgId><EndToEndId>E2E-{id}</EndToEndId><TxId>TX-{id}</TxId></Refs>
            <AmtDtls>
              <InstdAmt><Amt Ccy="EUR">{amount}</Amt></InstdAmt>
              <TxAmt><Amt Ccy="EUR">{amount}</Amt></TxAmt>
            </AmtDtls>
            <RltdPties>
              <{party}><Nm>{name}</Nm><PstlAdr><StrtNm>Koning Albert II-laan</StrtNm><BldgNb>35</BldgNb>
                <PstCd>1030</PstCd><TwnNm>Brussel</TwnNm><Ctry>BE</Ctry></PstlAdr></{party}>
              <{party}Acct><Id><IBAN>BE71096123456769</IBAN></Id></{party}Acct>
            </RltdPties>
            <RltdAgts><{party}Agt><FinInstnId><BICFI>GKCCBEBB</BICFI></FinInstnId></{party}Agt></RltdAgts>
            <RmtInf>{remittance}</RmtInf>
          </TxDtls>
        </NtryDtls>
      </Ntry>
"""


def _month_item(index: int) -> tuple[int, str, str, str, int, date]:
    """The ``index``-th money event of a busy month: per application, in turn, its
    own-share deposit, its government top-up of 3,000.00 (every top-up the same
    amount, many on one day) and its payout to the provider."""
    from stdnum.be import ogm_vcs

    application, kind = divmod(index, 3)
    base = f"{1_000_000_000 + application:010d}"
    reference = base + ogm_vcs.calc_check_digits(base)
    project = f"2026-{enterprise(application)}-0001"
    day = date(2026, 3, 2 + application % 20)
    if kind == 0:
        return application, "OwnShareDeposited", reference, project, 100_000 + application % 5000 * 100, day
    if kind == 1:
        return application, "SubsidyToppedUp", reference, project, 300_000, day + timedelta(days=1)
    return (
        application,
        "PayoutExecuted",
        reference,
        project,
        400_000 + application % 1000 * 100,
        day + timedelta(days=9),
    )


def month_postings(count: int) -> list[Any]:
    """The ledger's side of :func:`write_month_statement`: ``count`` postings."""
    from ledger.reconciliation.matching import Posting

    postings = []
    for index in range(count):
        application, type_, reference, project, amount, day = _month_item(index)
        postings.append(
            Posting(
                enterprise_number=enterprise(application),
                wallet_id=uuid.UUID(int=application + 1),
                sequence=3 + index % 3,
                type=type_,
                application_id=f"{enterprise(application)}-1",
                project_number=project,
                reference=reference,
                direction="debit" if type_ == "PayoutExecuted" else "credit",
                amount=amount,
                value_date=day,
            )
        )
    return postings


def write_month_statement(path: Path, count: int) -> int:
    """A camt.053 statement of ``count`` booked entries, one for each posting of
    :func:`month_postings`, written as fully as a bank writes them (codes,
    parties, addresses, agents); a deposit carries its structured reference, a
    top-up and a payout name the project. Returns the file's size in bytes."""
    with path.open("w", encoding="utf-8") as out:
        out.write(_CAMT_HEAD)
        batch = []
        for index in range(count):
            application, type_, reference, project, amount, day = _month_item(index)
            if type_ == "OwnShareDeposited":
                party, name = "Dbtr", f"Onderneming {application} BV"
                remittance = _STRUCTURED.format(reference=reference)
            elif type_ == "SubsidyToppedUp":
                party, name = "Dbtr", "Vlaamse overheid - Agentschap Innoveren en Ondernemen"
                remittance = f"<Ustrd>KMO-portefeuille subsidie project {project}</Ustrd>"
            else:
                party, name = "Cdtr", f"Opleidingscentrum {application % 50} VZW"
                remittance = f"<Ustrd>Opleiding project {project}</Ustrd>"
            batch.append(
                _CAMT_ENTRY.format(
                    id=f"M{index:08d}",
                    amount=format_euro(amount),
                    direction="DBIT" if type_ == "PayoutExecuted" else "CRDT",
                    family="ICDT" if type_ == "PayoutExecuted" else "RCDT",
                    day=day.isoformat(),
                    party=party,
                    name=name,
                    remittance=remittance,
                )
            )
            if len(batch) == 1000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
        out.write(_CAMT_TAIL)
    return path.stat().st_size


MATCH_ROUNDS = 3


def reconcile_timing(folder: Path, count: int) -> tuple[float, float, bool, int]:
    """CPU seconds to read a ``count``-entry statement and to match it against
    ``count`` postings (the best of three rounds); whether every entry matched;
    the operations the matcher counted. CPU time, not wall time: both are one
    thread's work, and on a shared machine the wall time also counts the turns
    other processes took (it swung by half or double between runs)."""
    from ledger.reconciliation.matching import reconcile
    from ledger.reconciliation.statements import read_statement

    path = folder / f"month-{count}.xml"
    write_month_statement(path, count)
    postings = month_postings(count)
    started = time.process_time()
    statement = read_statement(path, max_bytes=None)
    statement.fill_period()
    read = time.process_time() - started
    matched = float("inf")
    for _ in range(MATCH_ROUNDS):
        started = time.process_time()
        result = reconcile(statement, postings)
        matched = min(matched, time.process_time() - started)
    path.unlink()
    return read, matched, result.ok and len(result.matched) == count, result.examined


def reconcile_figures(scale: float, progress: Callable[[str], None]) -> list[Figure]:
    """Matching time as the statement grows eightfold, twice (linear: 8x), and the
    peak memory of reading a 200 MB statement, in a fresh interpreter."""
    folder = Path(tempfile.mkdtemp(prefix="kmo-bench-reconcile-"))
    figures: list[Figure] = []
    try:
        sizes = [max(30, int(size * scale)) for size in RECONCILE_SIZES]
        timings = {}
        for count in sizes:
            progress(f"reconciliation of {count} entries")
            timings[count] = reconcile_timing(folder, count)
        for small, large in zip(sizes, sizes[1:], strict=False):
            (read_s, match_s, ok_s, ops_s), (read_l, match_l, ok_l, ops_l) = timings[small], timings[large]
            growth = large / small
            detail = f"read in {read_s:.2f} and {read_l:.2f} CPU seconds"
            figures.append(
                Figure(
                    f"matcher's operations (postings and entries looked at), {large} entries / {small} entries",
                    ops_l,
                    ops_s,
                    ops_l / ops_s,
                    f"<= {1.125 * growth:.0f}",
                    ops_l / ops_s <= 1.125 * growth,
                    "operations",
                )
            )
            ratio = match_l / match_s
            figures.append(
                Figure(
                    f"matching {large} entries / {small} entries, CPU time ({growth:.0f}x the entries; "
                    f"linear is {growth:.0f}x)",
                    match_l,
                    match_s,
                    ratio,
                    f"<= {1.5 * growth:.0f}",
                    ratio <= 1.5 * growth and ok_s and ok_l,
                    "CPU seconds",
                    detail,
                )
            )
            figures.append(
                Figure(
                    f"reading and matching {large} entries / {small} entries, CPU time (reading once)",
                    read_l + match_l,
                    read_s + match_s,
                    (read_l + match_l) / (read_s + match_s),
                    "informative",
                    True,
                    "CPU seconds",
                )
            )
        target = int(STATEMENT_BYTES * scale)
        sample = folder / "sample.xml"
        per_entry = (write_month_statement(sample, 1000) - len(_CAMT_HEAD) - len(_CAMT_TAIL)) / 1000
        sample.unlink()
        count = max(30, int(target / per_entry))
        path = folder / "statement.xml"
        progress(f"writing a {target / 1e6:.0f} MB statement ({count} entries)")
        size = write_month_statement(path, count)
        for how, code in (
            ("streamed, each entry let go of", "n = sum(1 for _ in StatementFile(path, max_bytes=None).entries())"),
            ("every entry kept, as reconcile holds them", "n = len(read_statement(path, max_bytes=None).entries)"),
        ):
            progress(f"peak memory reading it, {how}")
            result, peak = in_child(
                "import os, time\nfrom pathlib import Path\n"
                "from ledger.reconciliation.statements import StatementFile, read_statement\n"
                "rss = [l for l in open('/proc/self/status') if l.startswith('VmRSS:')][0]\n"
                "before = int(rss.split()[1]) * 1024\n"
                f"path = Path({str(path)!r})\nstarted = time.perf_counter()\n{code}\n"
                "result = {'entries': n, 'seconds': time.perf_counter() - started, 'before': before}",
                "",
            )
            megabytes = peak / 1e6
            streamed = how.startswith("streamed")
            figures.append(
                Figure(
                    f"peak memory reading a {size / 1e6:.0f} MB camt.053 statement ({result['entries']} entries), "
                    f"{how}, MB / file MB",
                    megabytes,
                    size / 1e6,
                    peak / size,
                    "< 0.25" if streamed else "informative",
                    peak / size < 0.25 if streamed else True,
                    "MB",
                    f"read in {result['seconds']:.1f} s; the interpreter held {result['before'] / 1e6:.0f} MB "
                    "before reading",
                )
            )
        path.unlink()
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kmo-ledger bench", description=__doc__)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--json", dest="json_file", help="also write the figures to this JSON file")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full workload (CI uses 0.05)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--reconcile",
        action="store_true",
        help="measure reconciliation instead (2k, 16k, 128k entries; reading a 200 MB statement); --scale applies",
    )
    parser.add_argument(
        "--verify-events",
        type=int,
        metavar="N",
        help="measure only verify (and an inclusion proof) on a ledger of N events, e.g. 1000000",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return 0 if exit_.code == 0 else 2
    if args.scale <= 0:
        print("kmo-ledger bench: --scale must be positive", file=sys.stderr)
        return 2
    interactive = sys.stdout.isatty()

    def progress(step: str) -> None:
        if interactive:
            print(f"… {step}", file=sys.stderr)

    try:
        if args.verify_events:
            store = Store(args.store, args.postgres_url)
            try:
                figures = verify_figures(store, args.verify_events, progress)
            finally:
                store.close()
        elif args.reconcile:
            figures = reconcile_figures(args.scale, progress)
        else:
            figures = measure(args.store, args.postgres_url, args.scale, progress)
    except Exception as error:  # a store that cannot be reached is one line, not a trace
        print(
            f"kmo-ledger bench: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
            file=sys.stderr,
        )
        return 2
    if args.json_file:
        Path(args.json_file).write_text(json.dumps([asdict(f) for f in figures], indent=2))
    from rich.console import Console
    from rich.table import Table

    group = "reconciliation" if args.reconcile else args.store
    if args.verify_events:
        group += f", verify at {args.verify_events} events"
    table = Table(title=f"kmo-ledger bench ({group}, scale {args.scale})")
    for column in ("figure", "ratio", "target", "met", "measured", "baseline", "unit"):
        table.add_column(column)
    for f in figures:
        table.add_row(
            f.name,
            f"{f.ratio:.2f}",
            f.target,
            "yes" if f.met else "NO",
            f"{f.measured:.6g}",
            f"{f.baseline:.6g}",
            f.unit,
        )
    Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
