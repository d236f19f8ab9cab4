"""Group commit and SQLite's writer turn: saves that arrive together share a
transaction, one save's conflict refuses that save alone, and writers of
different processes never hold the turn at once."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from ledger.storage.writer import GroupCommit, WriterTurn


def event(label: str) -> StoredEvent:
    return StoredEvent(originator_id=uuid4(), originator_version=1, topic=label, state=b"{}")


class FakeStore:
    """Records what each transaction wrote; a transaction holding a topic in
    ``refused`` writes nothing and raises, as a key conflict does. The first
    transaction can be held open until ``release`` is set."""

    def __init__(self, refused: tuple[str, ...] = (), failure: BaseException | None = None):
        self.transactions: list[list[str]] = []
        self.refused = refused
        self.failure = failure
        """Raised by a transaction of more than one event (a lost connection, an interruption)."""
        self.calls = 0
        self.first_open = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def insert(self, stored: list[StoredEvent]) -> None:
        self.calls += 1
        if not self.transactions and not self.first_open.is_set():
            self.first_open.set()
            self.release.wait(5)
        topics = [s.topic for s in stored]
        if any(topic in self.refused for topic in topics):
            raise IntegrityError(f"duplicate key: {topics}")
        if self.failure is not None and len(stored) > 1:
            raise self.failure
        self.transactions.append(topics)


def save_in_threads(commits: GroupCommit, labels: list[str]) -> dict[str, BaseException | None]:
    outcomes: dict[str, BaseException | None] = {}

    def save(label: str) -> None:
        try:
            commits.write([event(label)])
            outcomes[label] = None
        except BaseException as error:  # noqa: BLE001 - the outcome is the point
            outcomes[label] = error

    threads = [threading.Thread(target=save, args=(label,), daemon=True) for label in labels]
    for thread in threads:
        thread.start()
    return outcomes, threads


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(5)
    assert not any(thread.is_alive() for thread in threads), "a save never returned"


def run_group(store: FakeStore, labels: list[str]) -> tuple[GroupCommit, dict[str, BaseException | None]]:
    """A first save holds the store open while ``labels`` queue up; then all go."""
    store.release.clear()
    commits = GroupCommit(store.insert)
    first, first_threads = save_in_threads(commits, ["first"])
    assert store.first_open.wait(5)
    outcomes, threads = save_in_threads(commits, labels)
    wait_for_queue(commits, len(labels))
    store.release.set()
    join(first_threads + threads)
    return commits, first | outcomes


def wait_for_queue(commits: GroupCommit, size: int) -> None:
    deadline = time.monotonic() + 5
    while len(commits._queue) < size and time.monotonic() < deadline:
        time.sleep(0.001)


def test_saves_arriving_during_a_write_share_the_next_transaction():
    store = FakeStore()
    commits, outcomes = run_group(store, ["a", "b", "c"])
    assert outcomes == {"first": None, "a": None, "b": None, "c": None}
    assert store.transactions[0] == ["first"]
    assert sorted(store.transactions[1]) == ["a", "b", "c"]
    assert commits.transactions == 2


def test_a_save_alone_is_written_at_once_in_its_own_thread():
    store = FakeStore()
    commits = GroupCommit(store.insert)
    writer = []
    commits._insert = lambda stored: (writer.append(threading.current_thread()), store.insert(stored))
    commits.write([event("alone")])
    assert store.transactions == [["alone"]] and writer == [threading.current_thread()]


def test_one_conflict_in_a_group_refuses_that_save_alone_and_writes_the_others_once():
    store = FakeStore(refused=("clash",))
    _commits, outcomes = run_group(store, ["a", "clash", "b"])
    assert outcomes["a"] is None and outcomes["b"] is None
    assert isinstance(outcomes["clash"], IntegrityError)
    written = [topic for transaction in store.transactions for topic in transaction]
    assert sorted(written) == ["a", "b", "first"]


def test_a_group_failing_for_any_other_reason_fails_every_save_and_writes_none_again():
    """A lost connection may come after the commit: writing the saves again
    one by one could record a command twice."""
    store = FakeStore(failure=OperationalError("server closed the connection unexpectedly"))
    _commits, outcomes = run_group(store, ["a", "b"])
    assert outcomes["first"] is None
    assert all(isinstance(outcomes[label], OperationalError) for label in "ab")
    assert outcomes["a"] is not outcomes["b"]  # each thread raises an exception of its own
    assert store.calls == 2 and store.transactions == [["first"]]


def test_an_interrupted_group_write_fails_its_saves_and_leaves_the_writer_usable():
    store = FakeStore(failure=KeyboardInterrupt())
    commits, outcomes = run_group(store, ["a", "b"])
    interrupted = [outcomes[label] for label in "ab"]
    # the leader raises the interruption; the other save learns its outcome is unknown
    assert sorted(type(error).__name__ for error in interrupted) == ["KeyboardInterrupt", "PersistenceError"]
    store.failure = None
    commits.write([event("after")])
    assert store.transactions[-1] == ["after"]


def test_a_failed_save_raises_in_the_thread_that_made_it():
    commits = GroupCommit(FakeStore(refused=("clash",)).insert)
    with pytest.raises(IntegrityError):
        commits.write([event("clash")])
    commits.write([event("fine")])  # the writer is free again


def hold_the_turn(path: str, log: str, rounds: int, together: Any) -> None:
    turn = WriterTurn(path)
    together.wait(30)  # both processes running before either takes a turn
    for _ in range(rounds):
        with turn:
            with open(log, "a") as out:
                out.write("in\n")
            time.sleep(0.002)
            with open(log, "a") as out:
                out.write("out\n")
    turn.close()


def test_writers_of_two_processes_never_hold_the_turn_at_once(tmp_path: Path):
    database, log = str(tmp_path / "ledger.db"), str(tmp_path / "turns.log")
    context = multiprocessing.get_context("spawn")
    together = context.Barrier(2)
    processes = [context.Process(target=hold_the_turn, args=(database, log, 100, together)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [process.exitcode for process in processes] == [0, 0]
    lines = Path(log).read_text().split()
    assert len(lines) == 400
    assert lines == ["in", "out"] * 200  # never two "in" in a row: one holder at a time
