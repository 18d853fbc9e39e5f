"""The admin API over HTTP against the real stack: tenants, budgets and keys managed with
EDITQ_ADMIN_API_KEY, tenant keys refused everywhere, hostile bodies refused leaving nothing behind."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jsonschema
import pytest

from editq.storage import tenants
from tests import images
from tests.support.stack import Universe

IMAGE = ("a.png", images.scene(256, 192), "image/png")
FORM = {"prompt": "make it a rainy night", "quality": "low", "size": "1024x1024"}


def _name() -> str:
    return f"adm{uuid.uuid4().hex[:10]}"


def _submit(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/edits", data=FORM, files={"image": IMAGE})


def _code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def test_admin_creates_a_tenant_and_a_key_sets_a_budget_and_revokes(stack: Universe) -> None:
    name = _name()
    with stack.admin() as admin:
        made = admin.post("/v1/admin/tenants", json={"name": name, "weight": 3, "max_running": 5})
        assert made.status_code == 201, made.text
        assert made.json()["webhook_secret"].startswith("whsec_")
        assert made.json()["budgets_usd"] == {"day": None, "month": None, "total": None}
        issued = admin.post(f"/v1/admin/tenants/{name}/keys")
        assert issued.status_code == 201, issued.text
        key_id, key = issued.json()["id"], issued.json()["key"]
        assert key.startswith(f"eq_{key_id}_")
        listed = admin.get(f"/v1/admin/tenants/{name}/keys").json()["data"]
        assert [k["id"] for k in listed] == [key_id]
        assert key not in json.dumps(listed)

        with stack.client(key) as tenant:
            accepted = _submit(tenant)
            assert accepted.status_code == 202, accepted.text
            estimate = accepted.json()["cost"]["estimated_usd"]
            below = f"{float(estimate) / 2:.6f}"
            patched = admin.patch(f"/v1/admin/tenants/{name}", json={"budget_usd_total": below})
            assert patched.status_code == 200, patched.text
            assert patched.json()["budgets_usd"]["total"] == below
            assert patched.json()["weight"] == 3
            refused = _submit(tenant)
            assert refused.status_code == 402
            assert refused.json()["error"]["code"] == "budget_exceeded"
            assert refused.json()["error"]["period"] == "total"

            cleared = admin.patch(f"/v1/admin/tenants/{name}", json={"budget_usd_total": None})
            assert cleared.json()["budgets_usd"]["total"] is None
            assert _submit(tenant).status_code == 202

            revoked = admin.delete(f"/v1/admin/tenants/{name}/keys/{key_id}")
            assert revoked.status_code == 200, revoked.text
            assert revoked.json() == {"object": "api_key", "id": key_id, "tenant": name, "revoked": True}
            after = _submit(tenant)
            assert after.status_code == 401
            assert _code(after) == "invalid_api_key"
            assert tenant.get("/v1/usage").status_code == 401
        assert admin.get(f"/v1/admin/tenants/{name}/keys").json()["data"] == []
        assert _code(admin.delete(f"/v1/admin/tenants/{name}/keys/{key_id}")) == "key_not_found"
        shown = admin.get(f"/v1/admin/tenants/{name}").json()
        assert shown["max_running"] == 5
        assert shown["budgets"]["total"]["limit_usd"] is None
        assert (
            float(shown["budgets"]["day"]["reserved_usd"]) + float(shown["budgets"]["day"]["spent_usd"]) > 0
        )


def test_tenants_are_listed_by_name_a_page_at_a_time(stack: Universe) -> None:
    prefix = _name()
    with stack.admin() as admin:
        for suffix in ("a", "b", "c"):
            assert admin.post("/v1/admin/tenants", json={"name": prefix + suffix}).status_code == 201
        page = admin.get("/v1/admin/tenants", params={"after": prefix, "limit": 2}).json()
        assert [t["name"] for t in page["data"]] == [prefix + "a", prefix + "b"]
        assert page["has_more"] is True
        rest = admin.get("/v1/admin/tenants", params={"after": prefix + "b", "limit": 1000}).json()
        assert rest["data"][0]["name"] == prefix + "c"
        assert _code(admin.get("/v1/admin/tenants", params={"limit": 0})) == "invalid_parameter"


def test_concurrent_creates_of_one_name_make_one_tenant(stack: Universe) -> None:
    name = _name()
    with stack.admin() as admin, ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda w: admin.post("/v1/admin/tenants", json={"name": name, "weight": w}), range(1, 9))
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * 7
    winner = next(a.json() for a in answers if a.status_code == 201)
    assert {_code(a) for a in answers if a.status_code == 409} == {"tenant_exists"}
    assert tenants.get(stack.db, name) == tenants.get(stack.db, winner["name"])
    assert tenants.get(stack.db, name).weight == winner["weight"]  # type: ignore[union-attr]


def _admin_routes(stack: Universe) -> list[tuple[str, str]]:
    document = httpx.get(f"{stack.api_url}/openapi.json", timeout=10).json()
    return [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if path.startswith("/v1/admin/")
        for method in operations
    ]


def test_every_admin_route_refuses_tenant_keys_and_missing_or_wrong_keys(stack: Universe) -> None:
    name, key = stack.tenant()
    key_id = key.split("_")[1]
    routes = _admin_routes(stack)
    assert len(routes) >= 7
    before = tenants.get(stack.db, name)
    for method, template in routes:
        path = template.replace("{name}", name).replace("{key_id}", key_id)
        body = {"name": _name(), "weight": 2} if method in ("POST", "PATCH") else None
        as_tenant = httpx.request(
            method, stack.api_url + path, json=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert (as_tenant.status_code, _code(as_tenant)) == (403, "forbidden"), (method, path)
        anonymous = httpx.request(method, stack.api_url + path, json=body)
        assert (anonymous.status_code, _code(anonymous)) == (401, "missing_api_key"), (method, path)
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        for wrong in ("Bearer nope", "Basic " + stack.env["EDITQ_ADMIN_API_KEY"], "Bearer"):
            refused = httpx.request(method, stack.api_url + path, json=body, headers={"Authorization": wrong})
            assert (refused.status_code, _code(refused)) == (401, "invalid_api_key"), (method, path, wrong)
    assert tenants.get(stack.db, name) == before
    assert tenants.list_keys(stack.db, name) == [key_id]
    with stack.client(key) as client:
        assert client.get("/v1/usage").status_code == 200
    with stack.admin() as admin:
        assert admin.get("/v1/usage").status_code == 401  # the admin key is no tenant key


def test_a_tenant_key_with_a_hostile_body_still_gets_403(stack: Universe) -> None:
    _, key = stack.tenant()
    with stack.client(key) as client:
        refused = client.post(
            "/v1/admin/tenants", content=b"[" * 5000, headers={"Content-Type": "application/json"}
        )
    assert (refused.status_code, _code(refused)) == (403, "forbidden")


def test_admin_api_is_off_without_its_key(make_stack: Callable[..., Universe]) -> None:
    u = make_stack(workers=0, beat=False, EDITQ_ADMIN_API_KEY="")
    name, key = u.tenant()
    for headers in ({}, {"Authorization": f"Bearer {key}"}, {"Authorization": "Bearer anything"}):
        for method, path in (("GET", "/v1/admin/tenants"), ("POST", f"/v1/admin/tenants/{name}/keys")):
            answer = httpx.request(method, u.api_url + path, headers=headers, json={"name": "x"})
            assert (answer.status_code, _code(answer)) == (404, "admin_disabled")
    assert tenants.list_keys(u.db, name) == [key.split("_")[1]]


#: Bodies refused at `POST /v1/admin/tenants`: (raw JSON, status, code).
BAD_CREATES: list[tuple[str, int, str]] = [
    ('{"name": "ok%s", "colour": "red"}', 400, "unknown_parameter"),
    ('{"name": "ok%s", "budgets_usd": {"day": "1"}}', 400, "unknown_parameter"),
    ("{}", 400, "invalid_tenant_name"),
    ('{"name": ""}', 400, "invalid_tenant_name"),
    ('{"name": "Upper%s"}', 400, "invalid_tenant_name"),
    ('{"name": "-lead%s"}', 400, "invalid_tenant_name"),
    ('{"name": "sl/ash%s"}', 400, "invalid_tenant_name"),
    ('{"name": "t\\u00ebst%s"}', 400, "invalid_tenant_name"),
    ('{"name": "ok%s\\n"}', 400, "invalid_tenant_name"),
    ('{"name": "%s' + "x" * 64 + '"}', 400, "invalid_tenant_name"),
    ('{"name": 5}', 400, "invalid_tenant_name"),
    ('{"name": ["ok%s"]}', 400, "invalid_tenant_name"),
    ('{"name": "ok%s", "weight": 0}', 400, "invalid_weight"),
    ('{"name": "ok%s", "weight": -1}', 400, "invalid_weight"),
    ('{"name": "ok%s", "weight": 1001}', 400, "invalid_weight"),
    ('{"name": "ok%s", "weight": 1.5}', 400, "invalid_weight"),
    ('{"name": "ok%s", "weight": 2.0}', 400, "invalid_weight"),
    ('{"name": "ok%s", "weight": "2"}', 400, "invalid_weight"),
    ('{"name": "ok%s", "weight": true}', 400, "invalid_weight"),
    ('{"name": "ok%s", "weight": null}', 400, "invalid_weight"),
    ('{"name": "ok%s", "weight": 1e400}', 400, "invalid_weight"),
    ('{"name": "ok%s", "max_running": -1}', 400, "invalid_max_running"),
    ('{"name": "ok%s", "max_running": 100001}', 400, "invalid_max_running"),
    ('{"name": "ok%s", "max_running": "3"}', 400, "invalid_max_running"),
    ('{"name": "ok%s", "budget_usd_day": -1}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_day": "-1"}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_day": "NaN"}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_day": "Infinity"}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_day": 1e400}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_day": "1e3"}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_day": " 5"}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_day": "\\uff15"}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_month": "1000000000.000001"}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_month": 1000000000000000000000000000000}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_total": "0.0000001"}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_total": 1e-7}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_total": true}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_total": {"usd": 1}}', 400, "invalid_budget"),
    ('{"name": "ok%s", "budget_usd_day": NaN}', 400, "invalid_json"),
    ('{"name": "ok%s", "budget_usd_day": Infinity}', 400, "invalid_json"),
    ('{"name": "ok%s"', 400, "invalid_json"),
    ('["ok%s"]', 400, "invalid_json"),
    ('"ok%s"', 400, "invalid_json"),
    ('{"name": "ok%s", "weight": ' + "[" * 40 + "]" * 40 + "}", 400, "json_too_deep"),
    ('{"name": "ok%s", "pad": "' + "x" * 20_000 + '"}', 413, "request_too_large"),
]


@pytest.mark.parametrize(
    ("raw", "status", "code"), BAD_CREATES, ids=[c[2] + str(i) for i, c in enumerate(BAD_CREATES)]
)
def test_hostile_creates_are_refused_and_leave_nothing(
    stack: Universe, raw: str, status: int, code: str
) -> None:
    body = raw.replace("%s", uuid.uuid4().hex[:8])
    before = tenants.names(stack.db)
    with stack.admin() as admin:
        answer = admin.post("/v1/admin/tenants", content=body, headers={"Content-Type": "application/json"})
    assert (answer.status_code, _code(answer)) == (status, code), answer.text
    assert tenants.names(stack.db) == before


def test_create_needs_json_and_refuses_a_taken_name(stack: Universe) -> None:
    name = _name()
    with stack.admin() as admin:
        plain = admin.post(
            "/v1/admin/tenants", content=json.dumps({"name": name}), headers={"Content-Type": "text/plain"}
        )
        assert (plain.status_code, _code(plain)) == (400, "unsupported_content_type")
        assert tenants.get(stack.db, name) is None
        first = admin.post("/v1/admin/tenants", json={"name": name, "budget_usd_day": 2.5})
        assert first.json()["budgets_usd"]["day"] == "2.500000"
        secret = tenants.secrets_of(stack.db, name)
        again = admin.post("/v1/admin/tenants", json={"name": name, "weight": 9})
        assert (again.status_code, _code(again)) == (409, "tenant_exists")
    assert tenants.get(stack.db, name).weight == 1  # type: ignore[union-attr]
    assert tenants.secrets_of(stack.db, name) == secret


#: Bodies refused at `PATCH /v1/admin/tenants/{name}`: (body, code).
BAD_PATCHES: list[tuple[Any, str]] = [
    ({"weight": None}, "invalid_weight"),
    ({"weight": 0}, "invalid_weight"),
    ({"name": "other"}, "unknown_parameter"),
    ({"budget_usd_week": "1"}, "unknown_parameter"),
    ({"budget_usd_day": "-0.5"}, "invalid_budget"),
    ({"budget_usd_day": "1", "max_running": -3}, "invalid_max_running"),
    ([], "invalid_json"),
]


def test_hostile_patches_change_nothing(stack: Universe) -> None:
    name, _ = stack.tenant(weight=4, budgets={"day": 7_000_000})
    before = tenants.get(stack.db, name)
    with stack.admin() as admin:
        for body, code in BAD_PATCHES:
            answer = admin.patch(f"/v1/admin/tenants/{name}", json=body)
            assert (answer.status_code, _code(answer)) == (400, code), (body, answer.text)
        assert tenants.get(stack.db, name) == before
        same = admin.patch(f"/v1/admin/tenants/{name}", json={})
        assert same.status_code == 200
        assert same.json()["budgets_usd"]["day"] == "7.000000"
        capped = admin.patch(f"/v1/admin/tenants/{name}", json={"max_running": 2})
        assert capped.json()["max_running"] == 2
        uncapped = admin.patch(f"/v1/admin/tenants/{name}", json={"max_running": None})
        assert uncapped.json()["max_running"] is None
        assert uncapped.json()["weight"] == 4


def test_unknown_tenants_and_keys_answer_404_and_leave_nothing(stack: Universe) -> None:
    name, key = stack.tenant()
    _, other_key = stack.tenant()
    ghost = _name()
    before = tenants.names(stack.db)
    with stack.admin() as admin:
        for method, path, body in (
            ("GET", f"/v1/admin/tenants/{ghost}", None),
            ("PATCH", f"/v1/admin/tenants/{ghost}", {"weight": 2}),
            ("POST", f"/v1/admin/tenants/{ghost}/keys", None),
            ("GET", f"/v1/admin/tenants/{ghost}/keys", None),
            ("DELETE", f"/v1/admin/tenants/{ghost}/keys/abcd", None),
            ("GET", "/v1/admin/tenants/" + "x" * 5000, None),
        ):
            answer = admin.request(method, path, json=body)
            assert (answer.status_code, _code(answer)) == (404, "tenant_not_found"), (method, path)
        escaped = admin.get("/v1/admin/tenants/..%2F..%2Fetc")
        assert (escaped.status_code, _code(escaped)) == (404, "not_found")  # no such route
        for key_id in (other_key.split("_")[1], "nope", "x" * 3000):
            answer = admin.delete(f"/v1/admin/tenants/{name}/keys/{key_id}")
            assert (answer.status_code, _code(answer)) == (404, "key_not_found")
    assert tenants.names(stack.db) == before
    assert tenants.list_keys(stack.db, ghost) == []
    with stack.client(other_key) as client:
        assert client.get("/v1/usage").status_code == 200
    assert tenants.authenticate(stack.db, key) == name


def test_admin_answers_match_the_published_schemas(stack: Universe) -> None:
    document = httpx.get(f"{stack.api_url}/openapi.json", timeout=10).json()
    strict = copy.deepcopy(document)
    for schema in ("AdminTenant", "CreatedTenant", "NewApiKey", "ApiKeyInfo", "RevokedApiKey", "TenantList"):
        strict["components"]["schemas"][schema]["additionalProperties"] = False

    def check(name: str, answer: httpx.Response) -> None:
        schema = {"$ref": f"#/components/schemas/{name}", "components": strict["components"]}
        jsonschema.Draft202012Validator(schema).validate(answer.json())

    create = document["paths"]["/v1/admin/tenants"]["post"]["requestBody"]["content"]["application/json"]
    assert create["schema"] == {"$ref": "#/components/schemas/TenantCreate"}
    body = document["components"]["schemas"]["TenantCreate"]
    assert set(body["properties"]) >= {"name", "weight", "budget_usd_day", "max_running"}
    name = _name()
    with stack.admin() as admin:
        check("CreatedTenant", admin.post("/v1/admin/tenants", json={"name": name, "budget_usd_month": "3"}))
        check("AdminTenant", admin.get(f"/v1/admin/tenants/{name}"))
        check("AdminTenant", admin.patch(f"/v1/admin/tenants/{name}", json={"weight": 2}))
        check("TenantList", admin.get("/v1/admin/tenants", params={"limit": 3}))
        issued = admin.post(f"/v1/admin/tenants/{name}/keys")
        check("NewApiKey", issued)
        check("ApiKeyList", admin.get(f"/v1/admin/tenants/{name}/keys"))
        check("RevokedApiKey", admin.delete(f"/v1/admin/tenants/{name}/keys/{issued.json()['id']}"))
        check("ErrorEnvelope", admin.get(f"/v1/admin/tenants/{_name()}"))
