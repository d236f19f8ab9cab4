"""One fold: every event type is handled by the ledger's fold and named by the
read models' fold; events know nothing of the wallet."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from ledger.domain import events as ev
from ledger.domain import fold
from projections import fold as views_fold


def test_the_ledgers_fold_has_a_handler_for_every_event_type():
    assert set(fold.HANDLERS) == set(ev.EVENT_TYPES.values())


def test_the_read_models_name_every_event_type():
    assert set(views_fold.HANDLERS) == set(ev.EVENT_TYPES)


def test_an_event_type_without_a_handler_is_refused_not_skipped():
    class AuditorWinked(ev.WalletEvent):
        pass

    opened = ev.WalletOpened(
        originator_id=uuid4(),
        originator_version=1,
        timestamp=datetime(2026, 1, 5, tzinfo=UTC),
        business_date=date(2026, 1, 5),
        actor=ev.SYSTEM,
        previous_hash="",
        enterprise_number="0403170701",
        name="x",
        figures={"fte": 1, "turnover": 0, "balance_total": 0},
        figures_year=2025,
        size="small",
        flemish_establishment=True,
        public_participation_percent="0",
    )
    state = fold.apply_event(None, opened)
    winked = AuditorWinked(**opened.model_dump(include=set(ev.ENVELOPE)) | {"originator_version": 2})
    with pytest.raises(ValueError, match="AuditorWinked cannot be applied"):
        fold.apply_event(state, winked)


def test_events_import_neither_the_wallet_nor_the_fold():
    code = (
        "import sys, ledger.domain.events; "
        "print(sorted(m for m in sys.modules if m in ('ledger.domain.wallet', 'ledger.domain.fold')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
