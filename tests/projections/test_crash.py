"""A crash between the events' commit and the views' commit: after a restart
every event is applied exactly once (no gap, no double count)."""

from __future__ import annotations

from datetime import date

import pytest
from freezegun import freeze_time

from projections import Projector, Queries, find_differences
from projections.consistency import compare_targets
from tests.conftest import ENTERPRISE
from tests.projections.helpers import SCENARIOS, differences_from_ledger
from tests.scenarios.helpers import Story


class PowerCut(Exception):
    pass


def cut_power(_position: int) -> None:
    raise PowerCut("the process died before the views' commit")


def test_a_crash_inside_the_views_transaction_is_replayed_exactly_once_after_a_restart(ledger):
    projector = Projector(ledger, batch_size=4)
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        application_id = story.submit(date(2026, 3, 16))
    before = projector.catch_up()
    with freeze_time("2026-03-05 10:00:00"):
        story.fund(application_id, date(2026, 3, 5))  # committed events the views have not seen
        story.pay(application_id, "4000.00", date(2026, 3, 5))
    projector.before_commit = cut_power  # rows written, then the crash
    with pytest.raises(PowerCut):
        projector.catch_up()
    assert projector.committed_position() == before  # nothing of the batch was kept
    projector.close()

    restarted = Projector(ledger, batch_size=4)
    views = Queries(restarted.views_url)
    try:
        assert restarted.catch_up() == ledger.recorder.max_notification_id()
        assert differences_from_ledger(ledger, views, [ENTERPRISE]) == []
        assert views.balances(ENTERPRISE)["paid_out"]["total"] == "4000.00"  # not 8000: no double count
        assert find_differences(ledger) == []
    finally:
        views.close()
        restarted.close()


def test_a_crash_after_some_batches_keeps_those_and_resumes_from_the_next(ledger):
    SCENARIOS["full_life"](ledger)
    projector = Projector(ledger, batch_size=2)
    commits = []

    def crash_on_third(position: int) -> None:
        commits.append(position)
        if len(commits) == 3:
            raise PowerCut

    projector.before_commit = crash_on_third
    with pytest.raises(PowerCut):
        projector.catch_up()
    assert projector.committed_position() == commits[1]  # two batches kept, the third lost
    projector.before_commit = None
    projector.catch_up()
    try:
        assert find_differences(ledger) == []
        views = Queries(projector.views_url)
        assert differences_from_ledger(ledger, views, [ENTERPRISE]) == []
        views.close()
    finally:
        projector.close()


def test_a_rebuild_interrupted_by_a_crash_is_finished_by_the_next_catch_up(ledger, tmp_path):
    SCENARIOS["lapse"](ledger)
    reference = Projector(ledger, f"sqlite:///{tmp_path / 'reference.db'}")
    reference.catch_up()
    projector = Projector(ledger, rebuild_batch_size=1)  # one wallet per batch
    batches: list[int] = []

    def crash_on_second(position: int) -> None:
        batches.append(position)
        if len(batches) == 2:
            raise PowerCut

    projector.before_commit = crash_on_second
    with pytest.raises(PowerCut):
        projector.rebuild()
    projector.close()
    resumed = Projector(ledger)
    try:
        assert resumed.catch_up() == ledger.recorder.max_notification_id()
        assert compare_targets(reference.target, resumed.target) == []
    finally:
        resumed.close()
        reference.close()


def test_a_rebuild_whose_batch_failed_is_finished_by_the_same_runner_without_counting_that_batch_twice(
    ledger, tmp_path
):
    SCENARIOS["lapse"](ledger)
    reference = Projector(ledger, f"sqlite:///{tmp_path / 'reference.db'}")
    reference.catch_up()
    projector = Projector(ledger, rebuild_batch_size=1)  # one wallet per batch
    projector.before_commit = cut_power  # the first batch is written, then its transaction fails
    try:
        with pytest.raises(PowerCut):
            projector.rebuild()
        projector.before_commit = None
        assert projector.catch_up() == ledger.recorder.max_notification_id()
        assert compare_targets(reference.target, projector.target) == []
    finally:
        projector.close()
        reference.close()


def test_a_runner_that_finds_the_position_moved_writes_nothing(ledger):
    SCENARIOS["full_life"](ledger)
    projector = Projector(ledger)
    try:
        batch, end = projector.log.read(0, ledger.recorder.max_notification_id(), 100)
        assert projector._apply(batch, end, expected=7) is None  # another runner got to 7
        assert projector.committed_position() == 0
        assert projector.target.query("SELECT COUNT(*) FROM audit_trail") == [(0,)]
    finally:
        projector.close()


def test_waiting_for_a_position_reads_your_own_writes(ledger):
    projector = Projector(ledger)
    try:
        with freeze_time("2026-03-02 09:00:00"):
            story = Story(ledger)
            story.submit(date(2026, 3, 16))
        position = ledger.recorder.max_notification_id()
        assert projector.wait_until(position, timeout=5)
        views = Queries(projector.views_url)
        assert views.position() >= position
        assert len(views.audit_trail(ENTERPRISE)["rows"]) == 2
        views.close()
        assert not projector.wait_until(position + 1000, timeout=0.01)
    finally:
        projector.close()
