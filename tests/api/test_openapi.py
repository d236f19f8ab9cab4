"""The OpenAPI document: public, complete, with stable operation ids and every
error documented as problem+json."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import Api

OPERATION_IDS = {
    "open_wallet",
    "file_sme_figures",
    "get_wallet",
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
}


PUBLIC_OPERATIONS = {("/readyz", "get"): "readiness"}
"""Outside /v1, asked without a key (a load balancer's checks)."""


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
