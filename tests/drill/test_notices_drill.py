"""The short notices drill, as CI runs it: the notifier is killed (SIGKILL)
four times while it delivers, the SMTP server is stopped and the webhook
receiver answers 500 for a while; every notice due still arrives, each
duplicate under the same id with the same content, none lost."""

from __future__ import annotations

import json

import pytest

from scripts.notices_drill import main


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_killing_the_notifier_and_failing_its_receivers_loses_no_notice(store, capsys, request):
    if store == "postgres":
        request.getfixturevalue("postgres_server")
    code = main(["--store", store, "--lives", "5", "--kills", "4", "--burst", "120", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["kills"] == 4 and report["due"] >= 600
    assert (report["lost"], report["unexpected"], report["duplicates_differing"]) == (0, 0, [])
    assert report["delivered"] == report["due"]
    assert report["burst"]["lag_seconds"] is not None
    assert code == 0


def test_the_drill_refuses_bad_usage():
    assert main(["--kills", "1"]) == 2
