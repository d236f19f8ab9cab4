"""Reconciliation that scales (#17): matching whose work grows with the
statement, not with statement x ledger; a statement streamed, not read whole;
a size limit answered in one line; progress only on a terminal.

Growth is shown by counting operations, never by timing: speed figures are
``kmo-ledger bench --reconcile``'s."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from ledger.build import ledger_at
from ledger.reconciliation.matching import Posting, reconcile
from ledger.reconciliation.statements import read_statement
from scripts import bench
from scripts import reconcile as reconcile_command
from tests.tools.helpers import Tools

MEGABYTE = 1_000_000
ROOT = Path(__file__).resolve().parents[2]


class CountedPosting(Posting):
    """A posting that counts every time the matcher reads one of its fields."""

    reads = 0

    def __getattribute__(self, name: str):
        if name in POSTING_FIELDS:
            CountedPosting.reads += 1
        return super().__getattribute__(name)


POSTING_FIELDS = frozenset(f.name for f in fields(Posting))


def posting_reads(tmp_path: Path, count: int) -> int:
    """How often matching a busy month of ``count`` entries reads a posting's
    fields; every entry must find its own posting."""
    statement = read_statement(_month(tmp_path, count))
    statement.fill_period()
    postings = [CountedPosting(**{f: getattr(p, f) for f in POSTING_FIELDS}) for p in bench.month_postings(count)]
    CountedPosting.reads = 0
    result = reconcile(statement, postings)
    reads = CountedPosting.reads
    assert result.ok and len(result.matched) == count
    return reads


def _month(tmp_path: Path, count: int) -> Path:
    path = tmp_path / f"month-{count}.xml"
    bench.write_month_statement(path, count)
    return path


def test_matching_four_times_the_entries_reads_the_postings_about_four_times_as_often(tmp_path):
    """Each entry looks at the few postings an index gives it (its reference and
    amount, its amount and day, what its remittance names), never at every
    posting: the quadratic matcher read them about sixteen times as often."""
    small, large = posting_reads(tmp_path, 300), posting_reads(tmp_path, 1200)
    assert large / small < 6, (small, large)


@pytest.fixture(scope="module")
def twenty_megabytes(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("statements") / "busy.xml"
    size = bench.write_month_statement(path, 14_000)
    assert size > 20 * MEGABYTE
    return path


PEAK_GROWTH = """
import sys
from pathlib import Path

from ledger.reconciliation import statements


def memory(key):
    return int(next(line for line in open("/proc/self/status") if line.startswith(key)).split()[1]) * 1024


path = Path(sys.argv[1])
before = memory("VmRSS:")
if sys.argv[2] == "streamed":
    entries = sum(1 for _ in statements.StatementFile(path).entries())
else:
    entries = len(statements.read_statement(path).entries)
print(entries, memory("VmHWM:") - before)
"""


def peak_growth(path: Path, how: str) -> tuple[int, int]:
    """Entries read and how far the peak memory of a fresh interpreter rose above
    what it held before reading ``path`` (its resident set, as a user sees it)."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_GROWTH, str(path), how],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        check=True,
    )
    entries, growth = done.stdout.split()
    return int(entries), int(growth)


def test_reading_a_20_mb_statement_holds_one_entry_at_a_time(twenty_megabytes):
    entries, growth = peak_growth(twenty_megabytes, "streamed")
    assert entries == 14_000
    assert growth < twenty_megabytes.stat().st_size / 4, growth


def test_keeping_every_entry_of_a_20_mb_statement_takes_less_than_half_its_size(twenty_megabytes):
    """What reconcile holds: the entries, not the document's tree (9 times the
    file's size when the whole XML was parsed first)."""
    entries, growth = peak_growth(twenty_megabytes, "kept")
    assert entries == 14_000
    assert growth < twenty_megabytes.stat().st_size / 2, growth


def test_a_statement_above_the_size_limit_is_refused_in_one_line(monkeypatch, capsys, sqlite_url, tmp_path):
    statement = tmp_path / "statement.csv"
    statement.write_text("value_date,amount,direction\n" + "2026-03-04,1.00,credit\n" * 100, encoding="utf-8")
    ledger_at(sqlite_url).close()  # an empty ledger to reconcile against: a tool makes none
    tools = Tools(monkeypatch, capsys, sqlite_url)
    refused = tools.run(reconcile_command.main, "--statement", str(statement), "--max-bytes", "1KiB")
    assert refused.code == 2 and refused.out == ""
    assert refused.err.strip().splitlines() == [
        f"kmo-ledger reconcile: {statement}: the statement is 2,328 bytes, more than the 1,024 bytes allowed "
        "(see --max-bytes)"
    ]
    allowed = tools.run(reconcile_command.main, "--statement", str(statement), "--max-bytes", "3000", "--json")
    assert allowed.code == 1 and json.loads(allowed.out)["statement"]["entries"] == 100


def test_the_default_limit_is_512_mib_and_refuses_before_reading(monkeypatch, capsys, sqlite_url, tmp_path):
    huge = tmp_path / "huge.xml"
    with huge.open("wb") as out:
        out.truncate(512 * 1024 * 1024 + 1)  # sparse: no disk used, nothing to read
    tools = Tools(monkeypatch, capsys, sqlite_url)
    refused = tools.run(reconcile_command.main, "--statement", str(huge))
    assert refused.code == 2 and refused.out == "" and len(refused.err.strip().splitlines()) == 1
    assert "more than the 536,870,912 bytes allowed (see --max-bytes)" in refused.err
    usage = tools.run(reconcile_command.main, "--help")
    assert "--max-bytes" in usage.out and "512MiB" in usage.out


@pytest.mark.parametrize("size", ["0", "-5", "lots", "12XB"])
def test_a_size_that_is_not_one_is_bad_usage(monkeypatch, capsys, sqlite_url, size):
    outcome = Tools(monkeypatch, capsys, sqlite_url).run(
        reconcile_command.main, "--statement", "statement.xml", "--max-bytes", size
    )
    assert outcome.code == 2 and "is not a size" in outcome.err and len(outcome.err.strip().splitlines()) == 1


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_and_nothing_else_is_printed_otherwise(
    monkeypatch, capsys, sqlite_url, tmp_path
):
    statement = tmp_path / "statement.csv"
    statement.write_text("value_date,amount,direction\n2026-03-04,1.00,credit\n", encoding="utf-8")
    ledger_at(sqlite_url).close()  # an empty ledger to reconcile against: a tool makes none
    tools = Tools(monkeypatch, capsys, sqlite_url)
    quiet = tools.run(reconcile_command.main, "--statement", str(statement), "--json")
    assert quiet.code == 1 and quiet.err == "" and json.loads(quiet.out)["statement"]["entries"] == 1
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    shown = tools.run(reconcile_command.main, "--statement", str(statement), "--json")
    assert shown.code == 1 and json.loads(shown.out)["statement"]["entries"] == 1  # standard output stays JSON
    assert "reading statement.csv" in terminal.getvalue()


def test_the_bench_measures_reconciliation_on_request(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--reconcile", "--scale", "0.01", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    names = [figure["name"] for figure in figures]
    operations = [f for f in figures if f["name"].startswith("matcher's operations")]
    assert len(operations) == 2 and all(f["met"] for f in operations)  # counted, so it holds on a busy machine
    assert [name.split(",")[0] for name in names if name.startswith("matching")] == [
        "matching 160 entries / 30 entries",
        "matching 1280 entries / 160 entries",
    ]
    assert sum("peak memory reading a 2 MB camt.053 statement" in name for name in names) == 2
    assert "kmo-ledger bench (reconciliation" in capsys.readouterr().out
