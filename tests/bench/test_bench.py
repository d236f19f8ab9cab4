"""The benchmark runs end to end and reports every figure with its target."""

from __future__ import annotations

import json

from pathlib import Path

from scripts.bench import Store, main


def test_bench_reports_each_figure_as_a_ratio_with_its_target(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--scale", "0.02", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    names = [f["name"] for f in figures]
    assert any(n.startswith("command rate / raw insert rate") for n in names)
    assert any(n.startswith("HTTP stack floor") for n in names)  # the framework's share, same run
    assert all(f["baseline"] > 0 and f["ratio"] > 0 and f["target"] for f in figures)
    assert "kmo-ledger bench" in capsys.readouterr().out


def test_bench_refuses_bad_usage_with_exit_2():
    assert main(["--scale", "0"]) == 2
    assert main(["--store", "oracle"]) == 2


def test_bench_leaves_no_store_behind():
    store = Store("sqlite", "postgresql://unused")
    url = store.url()
    Path(url[len("sqlite:///"):]).write_bytes(b"")
    store.close()
    assert not Path(store.folder).exists()
