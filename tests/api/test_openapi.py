"""`/openapi.json` from the running API describes what clients get: every route has a schema for
its success answer, and real answers validate against the published schemas."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate

from editq import catalogue
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


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


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
                shape = "OpenAIErrorResponse" if path.startswith("/v1/images/") else "ErrorEnvelope"
                assert refusal == {"$ref": f"#/components/schemas/{shape}"}, (method, path)
                assert "422" not in operation["responses"] or "HTTPValidationError" not in str(
                    operation["responses"]["422"]
                ), (method, path)


#: Routes that read their bodies by hand, and the bodies they document.
BODIES = {
    ("post", "/v1/edits"): {"multipart/form-data": "EditForm", "application/json": "EditJson"},
    ("post", "/v1/edits/estimate"): {"multipart/form-data": "EditForm", "application/json": "EditJson"},
    ("post", "/v1/uploads"): {"multipart/form-data": "UploadForm"},
    ("post", "/v1/edits/batch"): {"application/json": "BatchBody"},
    ("post", "/v1/webhooks/endpoints/enable"): {"application/json": "EndpointEnable"},
    ("post", "/v1/images/edits"): {
        "multipart/form-data": "OpenAIEditForm",
        "application/json": "OpenAIEditJson",
    },
}


def test_every_body_is_documented_with_binary_file_parts(document: dict[str, Any]) -> None:
    for (method, path), bodies in BODIES.items():
        content = document["paths"][path][method]["requestBody"]["content"]
        assert {media: c["schema"]["$ref"].rsplit("/", 1)[1] for media, c in content.items()} == bodies
    schemas = document["components"]["schemas"]
    for name in ("EditForm", "OpenAIEditForm"):
        image = schemas[name]["properties"]["image"]
        assert (image["type"], image["items"], image["maxItems"]) == (
            "array",
            {"type": "string", "format": "binary"},
            16,
        )
        assert schemas[name]["properties"]["mask"]["format"] == "binary"
        assert {"image", "prompt"} <= set(schemas[name]["required"])
        assert schemas[name]["additionalProperties"] is False
    assert schemas["UploadForm"]["properties"]["file"]["format"] == "binary"
    encoding = document["paths"]["/v1/edits"]["post"]["requestBody"]["content"]["multipart/form-data"][
        "encoding"
    ]
    assert encoding["mask"] == {"contentType": "image/png"}


def test_bodies_take_their_values_from_the_catalogue(document: dict[str, Any]) -> None:
    models = catalogue.load()
    form = document["components"]["schemas"]["EditForm"]["properties"]
    assert set(form["model"]["enum"]) == set(models.models) | set(models.snapshots)
    assert set(form["quality"]["enum"]) == {q for m in models.models.values() for q in m.qualities}
    assert form["n"]["maximum"] == max(m.max_n for m in models.models.values())
    assert form["prompt"]["maxLength"] == 32000
    assert form["strength"]["enum"] == ["low", "medium", "high"]
    openai = document["components"]["schemas"]["OpenAIEditForm"]["properties"]
    assert {"image[]", "n", "size", "quality", "background", "output_format", "output_compression"} <= set(
        openai
    )
    assert "strength" not in openai
    assert openai["stream"]["enum"] == [False]
    assert document["components"]["schemas"]["BatchBody"]["properties"]["items"]["maxItems"] == 1000


def test_the_bearer_key_and_the_headers_are_documented(document: dict[str, Any]) -> None:
    assert set(document["components"]["securitySchemes"]) == {"ApiKey", "AdminKey"}
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "editq API key",
        "description": "An editq API key (`editq keys create TENANT`): `Authorization: Bearer <key>`.",
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            public = path in ("/healthz", "/readyz", "/metrics") or path.startswith("/v1/models")
            scheme = "AdminKey" if path.startswith("/v1/admin/") else "ApiKey"
            assert operation.get("security") == (None if public else [{scheme: []}]), (method, path)
            names = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
            assert "content-type" not in names, (method, path)
    submit = {p["name"]: p for p in document["paths"]["/v1/edits"]["post"]["parameters"]}
    assert set(submit) == {"idempotency-key", "cancel-after", "prefer"}
    assert submit["prefer"]["schema"]["pattern"] == "^wait=[0-9]{1,3}$"
    compat = {p["name"] for p in document["paths"]["/v1/images/edits"]["post"]["parameters"]}
    assert compat == {"idempotency-key", "cancel-after"}
    admin = document["components"]["securitySchemes"]["AdminKey"]
    assert (admin["type"], admin["scheme"], admin["bearerFormat"]) == (
        "http",
        "bearer",
        "EDITQ_ADMIN_API_KEY",
    )


#: The admin API's JSON bodies (read by hand, documented by name).
ADMIN_BODIES = {
    ("post", "/v1/admin/tenants"): "TenantCreate",
    ("patch", "/v1/admin/tenants/{name}"): "TenantPatch",
    ("post", "/v1/admin/tenants/{name}/credits"): "TopUp",
    ("post", "/v1/admin/plans"): "PlanCreate",
}


def test_the_admin_bodies_are_documented(document: dict[str, Any]) -> None:
    for (method, path), name in ADMIN_BODIES.items():
        content = document["paths"][path][method]["requestBody"]["content"]
        assert content == {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
        body = document["components"]["schemas"][name]
        assert body["additionalProperties"] is False, name
    refs = {r for r in _refs(document) if r.startswith("#/")}
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in document["components"]["schemas"], ref
    estimate = document["components"]["schemas"]["Estimate"]["properties"]
    assert {"lane", "credits"} <= set(estimate)
    assert "economy" in document["components"]["schemas"]["EditForm"]["properties"]["priority"]["enum"]


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


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
    for name in (
        "EditJob",
        "Cost",
        "Output",
        "SourceInfo",
        "EditJobList",
        "ErrorEnvelope",
        "Estimate",
        "ImagesResponse",
        "CatalogueModel",
    ):
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
    compat = client.post("/v1/images/edits", data={"prompt": "x", "quality": "low"}, files={"image": PNG})
    assert compat.status_code == 200, compat.text
    _check(document, "ImagesResponse", compat.json())
    refused = client.post("/v1/images/edits", data={"prompt": "x", "model": "nope"}, files={"image": PNG})
    _check(document, "OpenAIErrorResponse", refused.json())
    for path, name in (
        ("/v1/usage", "Usage"),
        ("/v1/usage?group_by=model", "Usage"),
        ("/v1/usage/ledger", "Ledger"),
        ("/v1/webhooks/secret", "WebhookSecrets"),
        ("/v1/webhooks/endpoints", "DisabledEndpoints"),
        ("/v1/models", "ModelList"),
        ("/v1/models/gpt-image-2", "CatalogueModel"),
        ("/healthz", "Health"),
        ("/readyz", "Readiness"),
    ):
        _check(document, name, client.get(path).json())
