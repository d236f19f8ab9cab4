"""Schemathesis against the app's own OpenAPI document: whatever it sends, the
API never answers 5xx and every answer conforms to the document."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks

from api import create_app
from api.settings import Settings
from ledger.application import KmoLedger
from ledger.domain import commands as c
from ledger.domain.clock import SystemClock, brussels_date
from tests.api.conftest import Api, write_keys
from tests.api.test_openapi import OPERATION_IDS
from tests.conftest import BACK_OFFICE, ENTERPRISE, PROVIDER_ACTOR, TRAINER, sme, training

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[KmoLedger, str]]:
    """A wallet with a confirmed application, so requests also reach real data."""
    ledger = KmoLedger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.open_wallet(c.OpenWallet(enterprise_number=ENTERPRISE, name="Bakkerij Peeters", sme=sme()), BACK_OFFICE)
    starts_on = brussels_date(SystemClock().now()) + timedelta(days=10)
    _wallet, application_id = ledger.submit_application(
        ENTERPRISE, c.SubmitApplication(**training(starts_on)), BACK_OFFICE
    )
    ledger.handle(ENTERPRISE, application_id, c.ConfirmApplication(), PROVIDER_ACTOR)
    yield ledger, application_id
    ledger.close()


@pytest.fixture
def api_schema(tmp_path: Path, seeded: tuple[KmoLedger, str]):
    settings_ = Settings(database_url="sqlite:///unused", api_keys_file=write_keys(tmp_path / "keys.json"))
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings_, ledger=seeded[0]))


def _operation(schema, operation_id: str):
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw.get("operationId") == operation_id:
            return operation
    raise LookupError(operation_id)


@pytest.mark.parametrize("operation_id", sorted(OPERATION_IDS))
def test_no_request_makes_the_api_fail_or_break_its_schema(api_schema, seeded, operation_id):
    operation = _operation(api_schema, operation_id)
    known = {"en": ENTERPRISE, "id": seeded[1], "provider": TRAINER}
    on_real_data = {name: value for name, value in known.items() if "{" + name + "}" in operation.path}
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=on_real_data),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=strategy)
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def call(case):
        case.call_and_validate(headers=Api.headers("back-office"), checks=CHECKS)

    call()
