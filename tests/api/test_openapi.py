"""`/openapi.json` from the running API describes what clients get: every route has a schema for
its success answer, and real answers validate against the published schemas."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import jsonschema
import pytest

from tests import images
from tests.support.stack import Universe

PNG = ("src.png", images.scene(), "image/png")


@pytest.fixture(scope="module")
def document(stack: Universe) -> dict[str, Any]:
    response = httpx.get(f"{stack.api_url}/openapi.json", timeout=10.0)
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def _check(doc: dict[str, Any], name: str, answer: Any) -> None:
    """`answer` against `#/components/schemas/<name>`."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(answer)


def _success(operation: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(code, r) for code, r in operation["responses"].items() if code.startswith("2")]


def test_every_route_documents_its_success_answer(document: dict[str, Any]) -> None:
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answers = _success(operation)
            schemas = [m.get("schema") for _, r in answers for m in r.get("content", {}).values()]
            if not answers or not schemas or not all(schemas):
                missing.append(f"{method.upper()} {path}")
    assert not missing, f"no response schema: {missing}"


def test_json_answers_name_their_model_and_refusals_the_envelope(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for code, answer in _success(operation):
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                if schema is not None:
                    assert "$ref" in schema, (method, path, code, schema)
            if path.startswith("/v1/"):
                refusal = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
                assert refusal == {"$ref": "#/components/schemas/ErrorEnvelope"}, (method, path)
                assert "422" not in operation["responses"] or "HTTPValidationError" not in str(
                    operation["responses"]["422"]
                ), (method, path)


def test_webhook_events_are_documented(document: dict[str, Any]) -> None:
    events = {"edit.started", "edit.succeeded", "edit.failed", "edit.canceled", "edit.expired"}
    assert set(document["webhooks"]) == events
    for event in events:
        body = document["webhooks"][event]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": "#/components/schemas/WebhookEvent"}


def _strict(doc: dict[str, Any], name: str) -> None:
    """Forbid undeclared fields in `name`, so a field the API adds without a schema fails."""
    doc["components"]["schemas"][name]["additionalProperties"] = False


def test_real_answers_validate_against_their_schemas(
    document: dict[str, Any], stack: Universe, client: httpx.Client
) -> None:
    document = copy.deepcopy(document)
    for name in ("EditJob", "Cost", "Output", "SourceInfo", "EditJobList", "ErrorEnvelope", "Estimate"):
        _strict(document, name)
    submitted = client.post("/v1/edits", data={"prompt": "make it night"}, files={"image": PNG})
    assert submitted.status_code == 202, submitted.text
    _check(document, "EditJob", submitted.json())
    job_id = submitted.json()["id"]
    done = stack.wait_job(client, job_id)
    assert done["status"] == "succeeded", done
    _check(document, "EditJob", client.get(f"/v1/edits/{job_id}").json())
    _check(document, "EditJobList", client.get("/v1/edits", params={"limit": 2}).json())
    _check(document, "DeliveryList", client.get(f"/v1/edits/{job_id}/deliveries").json())
    _check(document, "ErrorEnvelope", client.get("/v1/edits/edit_missing").json())
    _check(document, "ErrorEnvelope", client.post(f"/v1/edits/{job_id}/cancel").json())
    estimate = client.post("/v1/edits/estimate", data={"prompt": "make it night"}, files={"image": PNG})
    _check(document, "Estimate", estimate.json())
    upload = client.post("/v1/uploads", files={"file": PNG})
    _check(document, "Image", upload.json())
    batch = client.post(
        "/v1/edits/batch", json={"items": [{"prompt": "x", "image_ids": [upload.json()["id"]]}, 1]}
    )
    _check(document, "BatchAnswer", batch.json())
    for path, name in (
        ("/v1/usage", "Usage"),
        ("/v1/usage?group_by=model", "Usage"),
        ("/v1/usage/ledger", "Ledger"),
        ("/v1/webhooks/secret", "WebhookSecrets"),
        ("/v1/webhooks/endpoints", "DisabledEndpoints"),
        ("/v1/models", "ModelList"),
        ("/healthz", "Health"),
        ("/readyz", "Readiness"),
    ):
        _check(document, name, client.get(path).json())
