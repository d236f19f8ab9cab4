"""Reconciliation as a library, without storage: statements read into entries,
postings matched against them, bad input refused with the ledger's own error."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from uuid import uuid4

import pytest

from ledger.domain.errors import ValidationFailed
from ledger.reconciliation.matching import Posting, as_report, reconcile
from ledger.reconciliation.statements import (
    Entry,
    InvalidStatement,
    Statement,
    parse_amount,
    read_statement,
)

REFERENCE = "090933755493"


def posting(amount: int, value_date: date, type: str = "OwnShareDeposited", direction: str = "credit") -> Posting:
    return Posting(
        enterprise_number="0403170701",
        wallet_id=uuid4(),
        sequence=4,
        type=type,
        application_id="A-1",
        project_number="KMO-2026-000001",
        reference=REFERENCE,
        direction=direction,
        amount=amount,
        value_date=value_date,
    )


def test_a_credit_with_the_applications_reference_matches_its_deposit():
    deposit = Entry(id="1", direction="credit", amount=700000, value_date=date(2026, 3, 4), reference=REFERENCE)
    statement = Statement(source="march.csv", format="csv", entries=[deposit])
    statement.fill_period()
    result = reconcile(statement, [posting(700000, date(2026, 3, 4))])
    assert result.ok and [m["event"]["type"] for m in result.matched] == ["OwnShareDeposited"]
    assert as_report(result)["statement"] | {"file": None} == {
        "file": None,
        "format": "csv",
        "from": "2026-03-04",
        "to": "2026-03-04",
        "entries": 1,
        "not_booked": 0,
        "credits": "7000.00",
        "debits": "0.00",
    }


def test_a_payout_missing_from_the_statement_is_unmatched_in_the_ledger():
    statement = Statement(source="march.csv", format="csv", period_from=date(2026, 3, 1), period_to=date(2026, 3, 31))
    result = reconcile(statement, [posting(400000, date(2026, 3, 20), "PayoutExecuted", "debit")])
    assert not result.ok and [u["event"]["type"] for u in result.unmatched_ledger] == ["PayoutExecuted"]


@pytest.mark.parametrize("text", ["1.001", "-5.00", "abc", "NaN"])
def test_an_amount_that_is_not_euro_and_cents_is_an_invalid_statement(text):
    with pytest.raises(InvalidStatement, match="line 2"):
        parse_amount(text, "march.csv line 2")


def test_an_invalid_statement_is_the_ledgers_validation_error(tmp_path):
    with pytest.raises(ValidationFailed, match="no such statement file") as refused:
        read_statement(tmp_path / "none.xml")
    assert refused.value.code == "validation_error"


def test_a_statement_with_no_entries_and_no_period_is_refused():
    with pytest.raises(InvalidStatement, match="no entries and no period"):
        Statement(source="empty.csv", format="csv").fill_period()


def test_the_library_imports_no_command_line_web_or_terminal_code():
    probe = (
        "import sys, ledger.reconciliation.matching, ledger.reconciliation.statements;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scripts', 'api', 'fastapi', 'rich', 'projections'}))"
    )
    outcome = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert outcome.stdout.strip() == "[]"
