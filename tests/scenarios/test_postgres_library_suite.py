"""The eventsourcing library's own recorder test cases, run against the
recorders the ledger's factory gives on PostgreSQL (the ledger's settings: the
database functions on, the ledger's insert function), each test on a schema
of its own (#17).

Two traps of the library's suite are covered: ``subscribe()`` waited forever,
because the ledger's insert function sent no NOTIFY, and a process recorder
dropped its tracking records, because with the database functions on the
library's insert calls the function with the events alone. The subscription
test has a time limit, so a hang fails instead of blocking the run."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    Subscription,
    TrackingRecorder,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresTrackingRecorder
from eventsourcing.utils import Environment

from ledger.storage import persistence_env
from ledger.storage.postgres import LedgerPostgresFactory, LedgerPostgresProcessRecorder, LedgerPostgresRecorder

try:
    from eventsourcing.tests.persistence import (
        ApplicationRecorderTestCase,
        InfrastructureFactoryTestCase,
        NonInterleavingNotificationIDsBaseCase,
        ProcessRecorderTestCase,
        TrackingRecorderTestCase,
    )
except ModuleNotFoundError as missing:  # they import the library's AES cipher: pycryptodome
    if os.environ.get("CI", "").lower() == "true":
        raise ModuleNotFoundError(
            f"the library's recorder test cases need {missing.name!r}: pycryptodome is a test dependency"
        ) from missing
    pytest.skip(f"the library's recorder test cases need {missing.name!r} (pycryptodome)", allow_module_level=True)

SUBSCRIBE_LIMIT = 30
"""Seconds the library's subscription test may take (it takes well under one)."""
SETTINGS = {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "11"}
"""At most 12 connections (the library's busiest test has 10 writers and 2 readers)."""


def ledger_env(postgres_url: str) -> Environment:
    """The ledger's persistence settings on the test's schema, tables named as the ledger's."""
    return Environment("kmo_ledger", persistence_env(postgres_url) | SETTINGS)


@pytest.mark.postgres
class OnTheLedgersFactory:
    """A test case whose recorders come from the ledger's factory on the test's schema."""

    factory: LedgerPostgresFactory

    @pytest.fixture(autouse=True)
    def _ledger_factory(self, postgres_url: str):
        self.factory = LedgerPostgresFactory(ledger_env(postgres_url))
        assert self.factory.datastore.enable_db_functions  # as the ledger runs
        yield
        self.factory.close()


def remembering_subscriptions(recorder: ApplicationRecorder, case: Any) -> ApplicationRecorder:
    """``recorder`` whose subscriptions the test case keeps, to stop them if the test hangs."""
    subscribe = recorder.subscribe

    def subscribe_and_remember(gt: int | None = None, topics: Any = ()) -> Subscription[Any]:
        subscription = subscribe(gt=gt, topics=topics)
        getattr(case, "subscriptions", []).append(subscription)
        return subscription

    recorder.subscribe = subscribe_and_remember  # type: ignore[method-assign]
    return recorder


class TestApplicationRecorder(OnTheLedgersFactory, ApplicationRecorderTestCase[ApplicationRecorder]):
    def create_recorder(self) -> ApplicationRecorder:
        recorder = self.factory.application_recorder()
        assert type(recorder) is LedgerPostgresRecorder
        return remembering_subscriptions(recorder, self)

    def test_insert_subscribe(self) -> None:
        self.subscriptions: list[Subscription[Any]] = []
        finished = threading.Event()
        failures: list[BaseException] = []

        def run() -> None:
            try:
                self.optional_test_insert_subscribe()
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)
            finished.set()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        if not finished.wait(SUBSCRIBE_LIMIT):
            for subscription in self.subscriptions:  # let the test's thread and its connections go
                subscription.stop()
            thread.join(SUBSCRIBE_LIMIT)
            pytest.fail(f"subscribe() still waiting for a new event after {SUBSCRIBE_LIMIT} s")
        if failures:
            raise failures[0]


class TestProcessRecorder(OnTheLedgersFactory, ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        recorder = self.factory.process_recorder()
        assert type(recorder) is LedgerPostgresProcessRecorder
        return recorder


class TestProcessRecorderAsApplicationRecorder(OnTheLedgersFactory, ApplicationRecorderTestCase[ApplicationRecorder]):
    """A process recorder is an application recorder too: events without tracking."""

    def create_recorder(self) -> ApplicationRecorder:
        return self.factory.process_recorder()


class TestTrackingRecorder(OnTheLedgersFactory, TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return self.factory.tracking_recorder()


class TestNotificationIdsDoNotInterleave(OnTheLedgersFactory, NonInterleavingNotificationIDsBaseCase):
    """Two writers at once: each one's events get consecutive ids (the table lock)."""

    def create_recorder(self) -> ApplicationRecorder:
        return self.factory.application_recorder()


@pytest.mark.postgres
class TestLedgerFactory(InfrastructureFactoryTestCase[LedgerPostgresFactory]):
    @pytest.fixture(autouse=True)
    def _ledger_env(self, postgres_url: str):
        self.env = ledger_env(postgres_url)

    class TrackingRecorderSubclass(PostgresTrackingRecorder):
        pass

    def expected_factory_class(self) -> type[LedgerPostgresFactory]:
        return LedgerPostgresFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return PostgresAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return LedgerPostgresRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return PostgresTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return self.TrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return LedgerPostgresProcessRecorder
