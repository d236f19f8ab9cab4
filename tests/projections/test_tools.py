"""``kmo-ledger rebuild-projections`` and ``purge-audit-trail``, called through main()."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from freezegun import freeze_time

from projections import Projector, Queries, find_differences, mark_exported, rebuild
from projections.consistency import compare_targets
from scripts import purge_audit_trail, rebuild_projections
from tests.conftest import ENTERPRISE, OTHER_ENTERPRISE
from tests.projections.helpers import SCENARIOS


@pytest.fixture
def configured(ledger, database_url, monkeypatch):
    monkeypatch.setenv("KMO_LEDGER_DATABASE_URL", database_url)
    return ledger


def test_rebuild_projections_equals_the_views_built_incrementally(configured, database_url, tmp_path, capsys):
    incremental = Projector(configured, f"sqlite:///{tmp_path / 'incremental.db'}", batch_size=2)
    SCENARIOS["stop"](configured, step=incremental.catch_up)
    assert rebuild_projections.main(["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["events_applied"] == len(configured.wallet_events(ENTERPRISE))
    assert report["position"] == configured.recorder.max_notification_id()
    rebuilt = Projector(configured)
    try:
        assert compare_targets(incremental.target, rebuilt.target) == []
    finally:
        rebuilt.close()
        incremental.close()


def test_rebuild_projections_prints_one_line_without_json(configured, capsys):
    SCENARIOS["full_life"](configured)
    assert rebuild_projections.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Rebuilt the read models: 10 event(s)")


def test_rebuild_projections_refuses_a_bad_batch_size(configured, capsys):
    assert rebuild_projections.main(["--batch-size", "0"]) == 2
    assert "batch-size" in capsys.readouterr().err


def test_the_benchmark_function_reports_events_and_seconds(configured, database_url):
    SCENARIOS["full_life"](configured)
    applied, seconds = rebuild(database_url)
    assert applied == 10 and seconds > 0
    assert find_differences(configured) == []


def _exported(database_url: str, through: int) -> None:
    mark_exported(
        database_url,
        from_date=date(2020, 1, 1),
        to_date=date(2026, 12, 31),
        through_position=through,
        location="/archive/2026",
        exported_at=datetime(2032, 1, 1, tzinfo=UTC),
    )


def test_a_purge_inside_the_retention_period_is_refused_and_purges_nothing(configured, database_url, capsys):
    projector = Projector(configured)
    SCENARIOS["full_life"](configured, step=projector.catch_up)
    _exported(database_url, configured.recorder.max_notification_id())
    with freeze_time("2030-06-01 12:00:00"):
        assert purge_audit_trail.main(["--before", "2027-01-01"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "retained until 2031-03-02" in captured.err
    views = Queries(projector.views_url)
    try:
        assert len(views.audit_trail(ENTERPRISE)["rows"]) == 10
    finally:
        views.close()
        projector.close()


def test_a_purge_of_rows_never_exported_is_refused(configured, database_url, capsys):
    projector = Projector(configured)
    SCENARIOS["full_life"](configured, step=projector.catch_up)
    _exported(database_url, 3)  # the export saw only the first notifications
    with freeze_time("2040-01-01 12:00:00"):
        assert purge_audit_trail.main(["--before", "2027-01-01", "--json"]) == 1
    captured = capsys.readouterr()
    assert "never exported" in captured.err
    assert json.loads(captured.out)["purged"] == 0
    assert projector.target.query("SELECT COUNT(*) FROM audit_trail") == [(10,)]
    projector.close()


def test_an_exported_trail_past_retention_is_purged_and_stays_purged_after_a_rebuild(configured, database_url, capsys):
    projector = Projector(configured)
    SCENARIOS["full_life"](configured, step=projector.catch_up)
    _exported(database_url, configured.recorder.max_notification_id())
    with freeze_time("2040-01-01 12:00:00"):
        assert purge_audit_trail.main(["--before", "2026-03-03", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["purged"] == 2  # the opening and the submission
    views = Queries(projector.views_url)
    try:
        assert [row["sequence"] for row in views.audit_trail(ENTERPRISE)["rows"]] == [3, 4, 5, 6, 7, 8, 9, 10]
        assert find_differences(configured) == []
        assert rebuild_projections.main(["--json"]) == 0
        assert [row["sequence"] for row in views.audit_trail(ENTERPRISE)["rows"]] == [3, 4, 5, 6, 7, 8, 9, 10]
    finally:
        views.close()
        projector.close()


def test_purge_audit_trail_needs_a_date(configured, capsys):
    assert purge_audit_trail.main(["--before", "soon"]) == 2
    assert "not a date" in capsys.readouterr().err


def test_a_rebuild_by_worker_processes_equals_one_in_this_process(configured, database_url, tmp_path):
    SCENARIOS["lapse"](configured)
    in_process = Projector(configured, f"sqlite:///{tmp_path / 'in_process.db'}")
    in_process.rebuild(workers=1)
    applied, _seconds = rebuild(database_url, workers=3)
    rebuilt = Projector(configured)
    try:
        assert applied == sum(len(configured.wallet_events(en)) for en in (ENTERPRISE, OTHER_ENTERPRISE))
        assert compare_targets(in_process.target, rebuilt.target) == []
        assert rebuilt.target.query("SELECT COUNT(*) FROM projection_tracking") == [(1,)]  # the ranges are done
    finally:
        rebuilt.close()
        in_process.close()


def test_a_rebuild_worker_that_dies_fails_the_rebuild_by_name_and_the_next_catch_up_finishes_it(
    configured, database_url, tmp_path, monkeypatch
):
    SCENARIOS["lapse"](configured)
    in_process = Projector(configured, f"sqlite:///{tmp_path / 'in_process.db'}")
    in_process.rebuild(workers=1)
    # every worker process of this rebuild dies as it starts (the injected
    # fault reaches them, not this process, through their environment)
    (tmp_path / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if os.environ.get('KMO_LEDGER_TEST_WORKER_DIES'):\n"
        "    sys.stderr.write('injected: this worker cannot start\\n')\n"
        "    os._exit(3)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("KMO_LEDGER_TEST_WORKER_DIES", "1")
    with pytest.raises(RuntimeError, match="a rebuild worker failed: .*injected: this worker cannot start"):
        rebuild(database_url, workers=2)
    monkeypatch.delenv("KMO_LEDGER_TEST_WORKER_DIES")
    resumed = Projector(configured)
    try:
        assert resumed.catch_up() == configured.recorder.max_notification_id()
        assert compare_targets(in_process.target, resumed.target) == []
    finally:
        resumed.close()
        in_process.close()
