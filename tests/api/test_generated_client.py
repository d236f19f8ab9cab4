"""The README's first session, through a typed client that openapi-python-client
generates from the document a real ``kmo-ledger serve`` answers at
``/openapi.json``: what an integrator who never reads our code would build.

Money goes in as ``str`` of a ``Decimal`` (the document types it as a string),
headers are left out or given (never ``None``), problems come back with their
code as an enum and validation errors as typed items. Generating takes about
3 s; nothing is fetched from the network (no post-hooks, no formatter).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from ledger.domain.clock import SystemClock, brussels_date
from scripts.local_server import Server
from tests.api.conftest import KEYS, write_keys
from tests.conftest import TRAINER

PACKAGE = "kmo_ledger_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    where = tmp_path_factory.mktemp("served")
    env = {
        **os.environ,
        "KMO_LEDGER_DATABASE_URL": f"sqlite:///{where / 'ledger.db'}",
        "KMO_LEDGER_API_KEYS_FILE": str(write_keys(where / "keys.json")),
    }
    server = Server(env, str(Path(__file__).resolve().parents[2]))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def generated(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The client package generated from the served document, imported."""
    where = tmp_path_factory.mktemp("client")
    document = where / "openapi.json"
    document.write_bytes(httpx.get(f"{server.url}/openapi.json", timeout=10).content)
    config = where / "config.yaml"
    config.write_text("post_hooks: []\n")  # no ruff run over the generated code
    subprocess.run(
        [GENERATOR, "generate", "--path", document, "--meta", "none", "--config", config, "--fail-on-warning"],
        cwd=where,
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(where))
    try:
        yield SimpleNamespace(
            client=importlib.import_module(f"{PACKAGE}.client"),
            models=importlib.import_module(f"{PACKAGE}.models"),
            wallets=_operations("wallets"),
            applications=_operations("applications"),
            operations=_operations("operations"),
        )
    finally:
        sys.path.remove(str(where))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _operations(tag: str) -> SimpleNamespace:
    """The generated modules of one tag's operations, by operation id."""
    folder = Path(importlib.import_module(f"{PACKAGE}.api.{tag}").__file__).parent
    names = [path.stem for path in folder.glob("*.py") if path.stem != "__init__"]
    return SimpleNamespace(**{name: importlib.import_module(f"{PACKAGE}.api.{tag}.{name}") for name in names})


def as_(generated: SimpleNamespace, server: Server, role: str):
    return generated.client.AuthenticatedClient(base_url=server.url, token=KEYS[role], raise_on_unexpected_status=True)


def answered(response, status: int):
    assert response.status_code == status, response.content
    return response.parsed


def test_the_readme_session_runs_through_a_generated_client(server: Server, generated: SimpleNamespace):
    m, wallets, applications = generated.models, generated.wallets, generated.applications
    back_office, provider = as_(generated, server, "back-office"), as_(generated, server, "provider")
    auditor = as_(generated, server, "auditor")
    today = brussels_date(SystemClock().now())

    figures = m.SmeFiguresIn(fte=12, turnover=str(Decimal("1800000.00")), balance_total=str(Decimal("900000.00")))
    opening = m.OpenWalletIn(enterprise_number="BE 0403.170.701", name="Bakkerij Peeters", sme=figures)
    wallet = answered(
        wallets.open_wallet.sync_detailed(client=back_office, body=opening, idempotency_key="open-0403170701"), 201
    )
    en = wallet.enterprise_number
    assert (
        en == "0403170701"
        and wallet.sizes.additional_properties[str(today.year)] == m.WalletOutSizesAdditionalProperty.SMALL
    )

    training = m.SubmitApplicationIn(
        service=m.SubmitApplicationInService.TRAINING,
        provider=TRAINER,
        themes=[m.SubmitApplicationInThemesItem.DIGITALISATION],
        enrolled_on=today - timedelta(days=20),
        starts_on=today - timedelta(days=2),
        cost_lines=[
            m.CostLineIn(kind=m.CostLineInKind.FEE, amount=str(Decimal("10000.00"))),
            m.CostLineIn(kind=m.CostLineInKind.VAT, amount=str(Decimal("2100.00"))),
        ],
    )
    application = answered(
        applications.submit_application.sync_detailed(
            en, client=back_office, body=training, idempotency_key="submit-1"
        ),
        201,
    )
    app_id = application.application_id
    assert (application.rate, application.subsidy, application.own_share) == ("30.00", "3000.00", "7000.00")
    assert application.service == m.ApplicationOutService.TRAINING and application.size == m.ApplicationOutSize.SMALL

    inbox = answered(generated.operations.provider_inbox.sync_detailed(TRAINER, client=provider), 200)
    assert [item.application_id for item in inbox.applications] == [app_id]
    confirmed = answered(
        applications.confirm_application.sync_detailed(en, app_id, client=provider, idempotency_key="confirm-1"), 200
    )
    assert confirmed.state == m.ApplicationOutState.CONFIRMED

    own_share, subsidy = Decimal(application.own_share), Decimal(application.subsidy)
    deposit = m.DepositIn(amount=str(own_share), payment_reference=application.payment_reference, value_date=today)
    answered(applications.deposit_own_share.sync_detailed(en, app_id, client=back_office, body=deposit), 200)
    top_up = m.TopUpIn(amount=str(subsidy), value_date=today)
    funded = answered(
        applications.top_up_subsidy.sync_detailed(en, app_id, client=back_office, body=top_up, idempotency_key="t-1"),
        200,
    )
    assert funded.state == m.ApplicationOutState.FUNDED

    order = m.PayoutOrderIn(amount=str(own_share + subsidy))
    created = answered(
        applications.order_payout.sync_detailed(en, app_id, client=back_office, body=order, idempotency_key="o-1"), 201
    )
    payout = m.PayoutIn(order_id=created.order_id, value_date=today)
    paid = answered(applications.execute_payout.sync_detailed(en, app_id, client=back_office, body=payout), 200)
    assert paid.state == m.ApplicationOutState.PAID_OUT and paid.paid_out.total == "10000.00"

    completion = m.CompletionIn(completed_on=today)
    completed = answered(
        applications.complete_service.sync_detailed(
            en, app_id, client=provider, body=completion, idempotency_key="c-1"
        ),
        200,
    )
    assert completed.state == m.ApplicationOutState.COMPLETED

    events = answered(wallets.list_wallet_events.sync_detailed(en, client=auditor), 200).events
    assert [event.type_.value for event in events] == [
        "WalletOpened",
        "ApplicationSubmitted",
        "ApplicationConfirmed",
        "OwnShareDeposited",
        "SubsidyToppedUp",
        "PayoutOrdered",
        "PayoutExecuted",
        "ServiceCompleted",
    ]
    assert events[1].data.additional_properties["rate"] == application.rate
    assert events[2].actor.role == m.ActorOutRole.PROVIDER
    verification = answered(wallets.verify_wallet.sync_detailed(en, client=auditor), 200)
    assert verification.ok and verification.problems == []


def test_problems_come_back_typed(server: Server, generated: SimpleNamespace):
    m, applications = generated.models, generated.applications
    back_office, auditor = as_(generated, server, "back-office"), as_(generated, server, "auditor")
    today = brussels_date(SystemClock().now())

    opening = m.OpenWalletIn(
        enterprise_number="0202239951",
        name="Drukkerij Janssens",
        sme=m.SmeFiguresIn(fte=3, turnover="1", balance_total="1"),
    )
    answered(generated.wallets.open_wallet.sync_detailed(client=back_office, body=opening), 201)
    refused = applications.order_payout.sync_detailed(
        "0202239951", "no-such-application", client=auditor, body=m.PayoutOrderIn(amount="1.00")
    )
    problem = answered(refused, 403)
    assert problem.code == m.ProblemDetailsCode.FORBIDDEN and problem.detail.startswith("an auditor key")

    too_precise = m.PayoutOrderIn(amount=str(Decimal("0.1") + Decimal("0.2") + Decimal("0.001")))
    invalid = answered(
        applications.order_payout.sync_detailed("0202239951", "x", client=back_office, body=too_precise), 422
    )
    assert invalid.code == m.ProblemDetailsCode.VALIDATION_ERROR
    assert [(e.location, e.message) for e in invalid.errors] == [
        ("body.amount", "at most two decimals (cents) are allowed")
    ]
    missing = m.TopUpIn(amount=str(Decimal("0.1") + Decimal("0.2")), value_date=today)
    absent = applications.top_up_subsidy.sync_detailed(
        "0202239951", "no-such-application", client=back_office, body=missing
    )
    assert answered(absent, 404).code == m.ProblemDetailsCode.NOT_FOUND
