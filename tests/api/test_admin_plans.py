"""Credit plans and top-ups through the admin API: hostile plan and top-up bodies refused with
their own codes leaving nothing behind, plans that never change, submissions a plan cannot price."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from editq.storage import credits, money, tenants
from tests import images
from tests.support.stack import Universe

IMAGE = ("a.png", images.scene(256, 192), "image/png")


def _name() -> str:
    return f"pl{uuid.uuid4().hex[:10]}"


def _code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


#: Plan bodies refused at `POST /v1/admin/plans` (the name is added): (fields, code).
BAD_PLANS: list[tuple[dict[str, Any], str]] = [
    ({"credit_usd": "0.01"}, "invalid_plan"),
    ({"credit_usd": "0.01", "markup": "0.1", "per_image": {"*": {"*": {"*": 1}}}}, "invalid_plan"),
    ({"markup": "0.1"}, "invalid_credit_usd"),
    ({"credit_usd": "0", "markup": "0.1"}, "invalid_credit_usd"),
    ({"credit_usd": -0.01, "markup": "0.1"}, "invalid_credit_usd"),
    ({"credit_usd": "0.0000001", "markup": "0.1"}, "invalid_credit_usd"),
    ({"credit_usd": "1000000.000001", "markup": "0.1"}, "invalid_credit_usd"),
    ({"credit_usd": "NaN", "markup": "0.1"}, "invalid_credit_usd"),
    ({"credit_usd": True, "markup": "0.1"}, "invalid_credit_usd"),
    ({"credit_usd": "0.01", "markup": "-0.1"}, "invalid_markup"),
    ({"credit_usd": "0.01", "markup": "100.000001"}, "invalid_markup"),
    ({"credit_usd": "0.01", "markup": "1e2"}, "invalid_markup"),
    ({"credit_usd": "0.01", "markup": [1]}, "invalid_markup"),
    ({"credit_usd": "0.01", "per_image": {}}, "invalid_per_image"),
    ({"credit_usd": "0.01", "per_image": {"*": {}}}, "invalid_per_image"),
    ({"credit_usd": "0.01", "per_image": {"*": {"*": {}}}}, "invalid_per_image"),
    ({"credit_usd": "0.01", "per_image": {"*": {"*": {"low": -1}}}}, "invalid_per_image"),
    ({"credit_usd": "0.01", "per_image": {"*": {"*": {"low": 1.5}}}}, "invalid_per_image"),
    ({"credit_usd": "0.01", "per_image": {"*": {"*": {"low": "2"}}}}, "invalid_per_image"),
    ({"credit_usd": "0.01", "per_image": {"*": {"*": {"low": 10**10}}}}, "invalid_per_image"),
    ({"credit_usd": "0.01", "per_image": {"*": {"*": {"ultra": 1}}}}, "invalid_per_image"),
    ({"credit_usd": "0.01", "per_image": {"*": {"huge": {"low": 1}}}}, "invalid_per_image"),
    ({"credit_usd": "0.01", "per_image": {"dall-e-9": {"*": {"low": 1}}}}, "invalid_per_image"),
    ({"credit_usd": "0.01", "per_image": {"GPT": {"*": {"low": 1}}}}, "invalid_per_image"),
    ({"credit_usd": "0.01", "per_image": [["*", 1]]}, "invalid_per_image"),
    ({"credit_usd": "0.01", "markup": "0", "tiers": []}, "unknown_parameter"),
]


@pytest.mark.parametrize(("fields", "code"), BAD_PLANS, ids=[f"{c}{i}" for i, (_, c) in enumerate(BAD_PLANS)])
def test_hostile_plans_are_refused_and_leave_nothing(
    stack: Universe, fields: dict[str, Any], code: str
) -> None:
    name = _name()
    with stack.admin() as admin:
        answer = admin.post("/v1/admin/plans", json={"name": name, **fields})
        assert (answer.status_code, _code(answer)) == (400, code), answer.text
        assert _code(admin.get(f"/v1/admin/plans/{name}")) == "plan_not_found"
    assert credits.get_plan(stack.db, name) is None
    assert name not in {p.name for p in credits.plans(stack.db)}


def test_oversize_deep_and_misnamed_plans_are_refused(stack: Universe) -> None:
    deep = '{"name": "x", "per_image": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
    wide = {"name": _name(), "credit_usd": "1", "per_image": {f"m{i}": {"*": {"*": 1}} for i in range(2000)}}
    with stack.admin() as admin:
        raw = {"Content-Type": "application/json"}
        assert _code(admin.post("/v1/admin/plans", content=deep, headers=raw)) == "json_too_deep"
        assert _code(admin.post("/v1/admin/plans", json=wide)) == "request_too_large"
        bad = admin.post("/v1/admin/plans", json={"name": "Bad Name", "credit_usd": "1", "markup": "0"})
        assert _code(bad) == "invalid_plan_name"
        name = _name()
        made = admin.post("/v1/admin/plans", json={"name": name, "credit_usd": 0.05, "markup": 0.5})
        assert made.status_code == 201, made.text
        assert made.json() | {"created_at": 0} == {
            "object": "plan",
            "name": name,
            "credit_usd": "0.050000",
            "markup": "0.5",
            "per_image": None,
            "created_at": 0,
        }
        again = admin.post("/v1/admin/plans", json={"name": name, "credit_usd": "1", "markup": "2"})
        assert (again.status_code, _code(again)) == (409, "plan_exists")
        assert admin.get(f"/v1/admin/plans/{name}").json()["markup"] == "0.5"
        assert name in [p["name"] for p in admin.get("/v1/admin/plans").json()["data"]]


def test_a_tenant_joins_only_a_plan_that_exists(stack: Universe) -> None:
    name, _ = stack.tenant()
    ghost = _name()
    with stack.admin() as admin:
        for body in ({"plan": ghost}, {"plan": ghost, "weight": 5}, {"plan": 7}, {"plan": "UP"}):
            answer = admin.patch(f"/v1/admin/tenants/{name}", json=body)
            assert answer.status_code == 400, body
            assert _code(answer) in ("unknown_plan", "invalid_plan_name")
        assert tenants.get(stack.db, name).weight == 1  # type: ignore[union-attr]
        new = _name()
        refused = admin.post("/v1/admin/tenants", json={"name": new, "plan": ghost})
        assert (refused.status_code, _code(refused)) == (400, "unknown_plan")
    assert tenants.get(stack.db, new) is None
    assert tenants.get(stack.db, name).plan is None  # type: ignore[union-attr]


#: Top-up bodies refused: (body, code).
BAD_TOP_UPS: list[tuple[Any, str]] = [
    ({"credits": 0}, "invalid_credits"),
    ({"credits": -5}, "invalid_credits"),
    ({"credits": 1.5}, "invalid_credits"),
    ({"credits": "5"}, "invalid_credits"),
    ({"credits": True}, "invalid_credits"),
    ({"credits": 10**13}, "invalid_credits"),
    ({}, "invalid_credits"),
    ({"credits": 5, "note": "a\nb"}, "invalid_note"),
    ({"credits": 5, "note": "x" * 201}, "invalid_note"),
    ({"credits": 5, "currency": "EUR"}, "unknown_parameter"),
    ([5], "invalid_json"),
]


def test_hostile_top_ups_change_nothing(stack: Universe) -> None:
    name, _ = stack.tenant()
    with stack.admin() as admin:
        for body, code in BAD_TOP_UPS:
            answer = admin.post(f"/v1/admin/tenants/{name}/credits", json=body)
            assert (answer.status_code, _code(answer)) == (400, code), (body, answer.text)
        ghost = admin.post(f"/v1/admin/tenants/{_name()}/credits", json={"credits": 5})
        assert (ghost.status_code, _code(ghost)) == (404, "tenant_not_found")
        assert credits.balance(stack.db, name).balance == 0
        assert money.ledger(stack.db, name) == []
        ok = admin.post(f"/v1/admin/tenants/{name}/credits", json={"credits": 12, "note": "invoice 7"})
        assert ok.json() == {
            "object": "credit_balance",
            "tenant": name,
            "plan": None,
            "balance": 12,
            "reserved": 0,
            "available": 12,
        }
        assert admin.get(f"/v1/admin/tenants/{name}").json()["credits"]["balance"] == 12
    entry = money.ledger(stack.db, name)[-1]
    assert (entry["kind"], entry["credits"], entry["note"]) == ("topup", 12, "invoice 7")


def test_a_retried_top_up_with_its_idempotency_key_adds_once(stack: Universe) -> None:
    name, _ = stack.tenant()
    other, _ = stack.tenant()
    url = f"/v1/admin/tenants/{name}/credits"
    with stack.admin() as admin:
        first = admin.post(url, json={"credits": 40, "note": "inv 9"}, headers={"Idempotency-Key": "inv-9"})
        assert first.status_code == 200, first.text
        assert "idempotent-replayed" not in first.headers
        admin.post(url, json={"credits": 5})  # another top-up meanwhile, without a key
        again = admin.post(url, json={"credits": 40, "note": "inv 9"}, headers={"Idempotency-Key": "inv-9"})
        assert again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()  # the answer the first one gave: balance 40
        assert again.json()["balance"] == 40
        reused = admin.post(url, json={"credits": 41, "note": "inv 9"}, headers={"Idempotency-Key": "inv-9"})
        assert (reused.status_code, _code(reused)) == (422, "idempotency_key_reused")
        bad = admin.post(url, json={"credits": 7}, headers={"Idempotency-Key": "k" * 256})
        assert (bad.status_code, _code(bad)) == (400, "invalid_idempotency_key")
        # the key is the tenant's own: the same key tops up another tenant
        theirs = admin.post(
            f"/v1/admin/tenants/{other}/credits",
            json={"credits": 40, "note": "inv 9"},
            headers={"Idempotency-Key": "inv-9"},
        )
        assert "idempotent-replayed" not in theirs.headers
    assert credits.balance(stack.db, name).balance == 45
    assert credits.balance(stack.db, other).balance == 40
    assert [e["credits"] for e in money.ledger(stack.db, name)] == [40, 5]


def test_a_submit_the_plan_cannot_price_or_afford_leaves_nothing(stack: Universe) -> None:
    with stack.admin() as admin:
        plan = _name()
        made = admin.post(
            "/v1/admin/plans",
            json={"name": plan, "credit_usd": "0.01", "per_image": {"gpt-image-1-mini": {"*": {"low": 4}}}},
        )
        assert made.status_code == 201, made.text
        tenant, key = stack.tenant()
        assert admin.patch(f"/v1/admin/tenants/{tenant}", json={"plan": plan}).status_code == 200
        admin.post(f"/v1/admin/tenants/{tenant}/credits", json={"credits": 3})
    with stack.client(key) as client:
        unpriced = client.post("/v1/edits", data={"prompt": "x", "quality": "high"}, files={"image": IMAGE})
        assert (unpriced.status_code, _code(unpriced)) == (400, "not_in_plan")
        assert _code(client.post("/v1/edits/estimate", data={"prompt": "x"}, files={"image": IMAGE})) == (
            "not_in_plan"
        )
        short = client.post("/v1/edits", data={"prompt": "x", "quality": "low"}, files={"image": IMAGE})
        assert (short.status_code, _code(short)) == (402, "insufficient_credits")
        assert short.json()["error"]["balance"] == 3
        assert client.get("/v1/edits").json()["data"] == []
        usage = client.get("/v1/usage").json()
    assert usage["credits"] == {"plan": plan, "balance": 3, "reserved": 0, "available": 3}
    assert usage["budgets"]["total"]["reserved_usd"] == "0.000000"
    assert [e["kind"] for e in money.ledger(stack.db, tenant)] == ["topup"]
    assert json.loads(credits.get_plan(stack.db, plan).to_record()["per_image"]) == {  # type: ignore[union-attr]
        "gpt-image-1-mini": {"*": {"low": 4}}
    }
