"""The benchmark runs end to end and reports every figure with its target."""

from __future__ import annotations

import json

from scripts.bench import main


def test_bench_reports_each_figure_as_a_ratio_with_its_target(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--scale", "0.02", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    names = [f["name"] for f in figures]
    assert any(n.startswith("command rate / raw insert rate") for n in names)
    assert all(f["baseline"] > 0 and f["ratio"] > 0 and f["target"] for f in figures)
    assert "kmo-ledger bench" in capsys.readouterr().out


def test_bench_refuses_bad_usage_with_exit_2():
    assert main(["--scale", "0"]) == 2
    assert main(["--store", "oracle"]) == 2
