"""The short fault drill, as CI runs it: the server is killed five times under
load and nothing is lost or recorded twice."""

from __future__ import annotations

import json
import tempfile

import pytest

from scripts.fault_drill import main


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_killing_the_server_under_load_loses_nothing_and_duplicates_nothing(
    store, capsys, request, monkeypatch, tmp_path
):
    if store == "postgres":
        request.getfixturevalue("postgres_server")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the drill makes its store
    code = main(["--store", store, "--clients", "8", "--kills", "5", "--cycles", "2", "--json"])
    [report] = json.loads(capsys.readouterr().out)
    assert report["crashes"] >= 5 and report["retries"] > 0
    assert (report["lost"], report["duplicated"], report["findings"]) == (0, 0, [])
    assert report["ceiling_race"]["held"] and report["ceiling_race"]["granted"] == report["ceiling_race"]["ceiling"]
    assert code == 0
    assert list(tmp_path.glob("kmo-drill-*")) == []  # the drill's store is gone with it


def test_the_drill_refuses_bad_usage():
    assert main(["--clients", "0"]) == 2
