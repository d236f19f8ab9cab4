"""The OpenAPI document: public, complete, with stable operation ids and every
error documented as problem+json."""

from __future__ import annotations

from typing import get_args

from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from api.problems import STATUS_BY_CODE
from api.settings import Role
from ledger.domain.commands import RefundKind
from ledger.domain.errors import LedgerError
from ledger.domain.events import EVENT_TYPES
from ledger.domain.lifecycle import DeadlineRule, StopReason
from ledger.domain.regimes import REGIMES, SERVICES, THEMES, Size
from ledger.domain.rules import CostKind
from ledger.domain.state import ACCOUNTS, ApplicationStateName
from tests.api.conftest import Api

OPERATION_IDS = {
    "open_wallet",
    "file_sme_figures",
    "get_wallet",
    "list_wallets",
    "submit_application",
    "get_application",
    "confirm_application",
    "refuse_application",
    "deposit_own_share",
    "top_up_subsidy",
    "order_payout",
    "execute_payout",
    "stop_project",
    "repay_recovery",
    "execute_refund",
    "reverse_event",
    "complete_service",
    "run_deadlines",
    "list_deadlines",
    "provider_inbox",
    "list_payout_orders",
    "list_wallet_events",
    "replay_wallet",
    "get_audit_trail",
    "verify_wallet",
    "reconciliation_totals",
    "change_contact",
    "latest_checkpoint",
    "checkpoint_public_key",
    "checkpoint_consistency",
    "event_proof",
    "list_notices",
    "redeliver_notice",
    "put_provider",
    "get_provider",
}


API_MD_CODES = {
    "validation_error",
    "invalid_enterprise_number",
    "invalid_provider_number",
    "not_an_sme",
    "not_eligible",
    "deadline_passed",
    "ceiling_exceeded",
    "below_minimum_cost",
    "theme_required",
    "service_not_eligible",
    "amount_mismatch",
    "payment_reference_mismatch",
    "invalid_state",
    "insufficient_funds",
    "idempotency_key_reused",
    "version_mismatch",
    "already_exists",
    "not_found",
    "unauthorized",
    "forbidden",
    "internal_error",
}
"""The problem codes API.md names."""


PUBLIC_OPERATIONS = {("/healthz", "get"): "liveness", ("/readyz", "get"): "readiness", ("/metrics", "get"): "metrics"}
"""Outside /v1, asked without a key (a load balancer's and Prometheus' checks)."""


def _operations(document: dict):
    """The operations under /v1, each behind a key."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if (path, method) not in PUBLIC_OPERATIONS:
                yield path, method, operation


def test_the_public_checks_are_documented_and_need_no_key(api: Api):
    document = api.client.get("/openapi.json").json()
    for (path, method), operation_id in PUBLIC_OPERATIONS.items():
        operation = document["paths"][path][method]
        assert operation["operationId"] == operation_id and "security" not in operation
        assert api.client.get(path).status_code == 200


def test_the_document_and_docs_page_are_public(api: Api):
    client: TestClient = api.client
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_every_resource_is_listed_with_its_full_path_and_a_stable_operation_id(api: Api):
    document = api.client.get("/openapi.json").json()
    operations = list(_operations(document))
    assert {operation["operationId"] for _path, _method, operation in operations} == OPERATION_IDS
    assert all(path.startswith("/v1/") for path, _method, _operation in operations)
    assert ("/v1/wallets/{en}/applications/{id}/payout-orders", "post") in {(p, m) for p, m, _ in operations}


def test_every_operation_needs_a_bearer_key_and_documents_its_problems(api: Api):
    document = api.client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, method, operation in _operations(document):
        assert operation["security"] == [{"HTTPBearer": []}], (path, method)
        responses = operation["responses"]
        assert {"401", "422"} <= set(responses), (path, method)
        for status, response in responses.items():
            if int(status) >= 400:
                assert set(response["content"]) == {"application/problem+json"}, (path, method, status)
                content = response["content"]["application/problem+json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}
                assert content["example"]["code"]


def test_creating_commands_answer_201_and_every_post_takes_an_idempotency_key(api: Api):
    document = api.client.get("/openapi.json").json()
    created = {"open_wallet", "submit_application", "order_payout"}
    for _path, method, operation in _operations(document):
        success = {s for s in operation["responses"] if s.startswith("2")}
        assert success == ({"201"} if operation["operationId"] in created else {"200"})
        if method == "post":
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            assert "Idempotency-Key" in headers


def test_request_bodies_carry_examples(api: Api):
    document = api.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for _path, _method, operation in _operations(document):
        if "requestBody" in operation:
            reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert schemas[reference.rsplit("/", 1)[-1]]["examples"]


# --------------------------------------------------------------------------- as generated clients read it


def _schema(document: dict, reference: dict) -> dict:
    return document["components"]["schemas"][reference["$ref"].rsplit("/", 1)[-1]]


def _request_schemas(document: dict) -> dict[str, dict]:
    """Every schema a request body is built from, by name (nested ones included)."""
    found: dict[str, dict] = {}
    pending = [
        operation["requestBody"]["content"]["application/json"]["schema"]
        for _path, _method, operation in _all_operations(document)
        if "requestBody" in operation
    ]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "$ref" in node and node["$ref"].rsplit("/", 1)[-1] not in found:
                name = node["$ref"].rsplit("/", 1)[-1]
                found[name] = document["components"]["schemas"][name]
                pending.append(found[name])
            pending.extend(value for key, value in node.items() if key != "$ref")
        elif isinstance(node, list):
            pending.extend(node)
    return found


def _all_operations(document: dict):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def _enum(document: dict, schema_name: str, field: str) -> set[str]:
    """The closed set a property is documented with (the items' for an array)."""
    node = document["components"]["schemas"][schema_name]["properties"][field]
    node = node.get("items", node)
    return set(node["enum"])


def test_the_document_is_valid_openapi(api: Api):
    document = api.client.get("/openapi.json").json()
    validate(document)  # raises on the first violation of the OpenAPI 3.1 schema


def test_money_inputs_are_documented_as_strings(api: Api):
    document = api.client.get("/openapi.json").json()
    money = {
        (name, field): node
        for name, schema in _request_schemas(document).items()
        for field, node in schema.get("properties", {}).items()
        if field in ("amount", "turnover", "balance_total")
    }
    assert {("PayoutOrderIn", "amount"), ("SmeFiguresIn", "turnover"), ("HoldingIn", "balance_total")} <= set(money)
    for where, node in money.items():
        assert node["type"] == "string" and "anyOf" not in node, where
        assert node["pattern"] == r"^[0-9]{1,12}(\.[0-9]{1,2})?$", where


def test_no_parameter_is_nullable(api: Api):
    document = api.client.get("/openapi.json").json()
    parameters = [
        (path, parameter["name"], parameter["schema"])
        for path, _method, operation in _all_operations(document)
        for parameter in operation.get("parameters", [])
    ]
    assert {"Idempotency-Key", "If-Match", "as_of", "from", "to"} <= {name for _path, name, _schema in parameters}
    for path, name, schema in parameters:
        assert "anyOf" not in schema and schema.get("type") not in (None, "null"), (path, name, schema)


def test_the_problem_code_is_an_enum_of_every_code_the_api_answers(api: Api):
    document = api.client.get("/openapi.json").json()
    codes = set(document["components"]["schemas"]["ProblemDetails"]["properties"]["code"]["enum"])
    refusals, pending = set(), [LedgerError]
    while pending:
        refusal = pending.pop()
        refusals.add(refusal.code)
        pending.extend(refusal.__subclasses__())
    assert API_MD_CODES <= codes
    assert refusals | set(STATUS_BY_CODE) | {"too_many_connections", "record_unverifiable"} <= codes


def test_validation_errors_are_typed(api: Api):
    document = api.client.get("/openapi.json").json()
    errors = document["components"]["schemas"]["ProblemDetails"]["properties"]["errors"]
    item = _schema(document, errors["items"])
    assert errors["type"] == "array" and set(item["required"]) == {"location", "message"}
    assert {item["properties"][field]["type"] for field in ("location", "message")} == {"string"}


def test_closed_sets_are_enums_equal_to_the_domains_on_requests_and_responses(api: Api):
    document = api.client.get("/openapi.json").json()
    states, sizes, services = set(get_args(ApplicationStateName)), set(get_args(Size)), set(SERVICES)
    expected = {
        ("SubmitApplicationIn", "service"): services,
        ("SubmitApplicationIn", "themes"): set(THEMES),
        ("CostLineIn", "kind"): set(get_args(CostKind)),
        ("StopIn", "reason"): set(get_args(StopReason)),
        ("RefundIn", "kind"): set(get_args(RefundKind)),
        ("ApplicationOut", "service"): services,
        ("ApplicationOut", "size"): sizes,
        ("ApplicationOut", "state"): states,
        ("ApplicationOut", "themes"): set(THEMES),
        ("ApplicationOut", "regime"): {regime.name for regime in REGIMES},
        ("ApplicationSummaryOut", "service"): services,
        ("InboxItemOut", "service"): services,
        ("CostLineOut", "kind"): set(get_args(CostKind)),
        ("ActorOut", "role"): {*get_args(Role), "system"},
        ("EventOut", "type"): set(EVENT_TYPES),
        ("AuditRowOut", "type"): set(EVENT_TYPES),
        ("LegOut", "account"): set(ACCOUNTS),
        ("NextDeadlineOut", "rule"): set(get_args(DeadlineRule)),
        ("LapseOut", "rule"): set(get_args(DeadlineRule)),
        ("TotalsRowOut", "account_kind"): {"enterprise", "government", "provider", "held", "due", "recovered"},
    }
    for (schema, field), values in expected.items():
        assert _enum(document, schema, field) == values, (schema, field)
    assert document["components"]["schemas"]["WalletOut"]["properties"]["sizes"]["additionalProperties"]["enum"]


def test_request_fields_with_a_default_are_optional_to_clients(api: Api):
    """Neither ``required`` nor with a ``default`` (openapi-typescript types a property
    with a default as one the client must send); the default is said in words."""
    document = api.client.get("/openapi.json").json()
    schemas = _request_schemas(document)
    optional = {
        (name, field)
        for name, schema in schemas.items()
        for field in schema.get("properties", {})
        if field not in schema.get("required", [])
    }
    assert {("OpenWalletIn", "flemish_establishment"), ("SmeFiguresIn", "partners"), ("StopIn", "proof")} <= optional
    for name, field in optional:
        node = schemas[name]["properties"][field]
        assert "default" not in node and "Optional" in node["description"], (name, field)
    assert "default true" in schemas["OpenWalletIn"]["properties"]["flemish_establishment"]["description"]


def test_every_operation_documents_the_problems_any_route_may_answer(api: Api):
    document = api.client.get("/openapi.json").json()
    for path, method, operation in _all_operations(document):
        for status in ("405", "413", "500"):
            content = operation["responses"][status]["content"]
            assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}, (
                path,
                method,
                status,
            )


def test_the_document_has_tags_servers_contact_and_a_description_for_every_operation(api: Api):
    document = api.client.get("/openapi.json").json()
    tags = {tag["name"] for tag in document["tags"] if tag.get("description")}
    assert document["servers"] and document["info"]["contact"]["name"]
    for path, method, operation in _all_operations(document):
        assert operation["tags"] and set(operation["tags"]) <= tags, (path, method)
        assert operation.get("description", "").strip(), (path, method)
