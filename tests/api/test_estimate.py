"""`POST /v1/edits/estimate`: the checks and price of a submit, and nothing stored."""

from __future__ import annotations

from typing import Any

from editq import cost
from tests import images
from tests.support.stack import Universe

PNG = ("src.png", images.scene(), "image/png")
MASK = ("mask.png", images.mask(), "image/png")


def _snapshot(stack: Universe, tenant: str) -> dict[str, Any]:
    """Every Redis value and S3 object of the tenant, to compare before and after."""
    r = stack.redis
    keys = sorted(r.scan_iter(f"{stack.prefix}:*{tenant}*"))
    return {
        "redis": {k: r.dump(k) for k in keys},
        "s3": stack.db.objects.list_keys(f"t/{tenant}/"),
    }


def test_estimate_answers_a_submit_price_and_stores_nothing(stack: Universe) -> None:
    tenant, key = stack.tenant(budgets={"day": 5_000_000, "total": 20_000_000})
    with stack.client(key) as client:
        before = _snapshot(stack, tenant)
        fields = {"prompt": "make it night, keep the sun", "aspect_ratio": "16:9", "strength": "low"}
        response = client.post("/v1/edits/estimate", data=fields, files=[("image", PNG), ("mask", MASK)])
        assert response.status_code == 200, response.text
        estimate = response.json()
        assert _snapshot(stack, tenant) == before
        assert estimate["model"] == "gpt-image-1-mini"
        assert estimate["provider_size"] == "1536x1024"
        assert float(estimate["estimated_usd"]) > 0
        assert estimate["budget_remaining_usd"] == {"day": "5.000000", "month": None, "total": "20.000000"}
        assert "model_note" in estimate

        # The same fields submitted reserve exactly the estimate.
        job = client.post("/v1/edits", data=fields, files=[("image", PNG), ("mask", MASK)]).json()
        assert job["cost"]["estimated_usd"] == estimate["estimated_usd"]
        assert job["provider_request"]["size"] == estimate["provider_size"]
        stack.wait_job(client, job["id"])

        # JSON with uploads: the same answer; the budget left now counts the finished job.
        image_id = client.post("/v1/uploads", files={"file": PNG}).json()["id"]
        mask_id = client.post("/v1/uploads", files={"file": MASK}).json()["id"]
        before = _snapshot(stack, tenant)
        again = client.post(
            "/v1/edits/estimate", json={**fields, "image_ids": [image_id], "mask_id": mask_id}
        ).json()
        assert _snapshot(stack, tenant) == before
        assert again["estimated_usd"] == estimate["estimated_usd"]
        spent = client.get("/v1/usage").json()["budgets"]["day"]["spent_usd"]
        assert float(spent) > 0
        left = cost.usd(5_000_000 - round(float(spent) * 1_000_000))
        assert again["budget_remaining_usd"]["day"] == left


def test_estimate_refuses_what_a_submit_refuses(stack: Universe) -> None:
    tenant, key = stack.tenant()
    small_mask = ("mask.png", images.mask(320, 240), "image/png")
    cases: list[tuple[dict[str, Any], list[Any], int, str]] = [
        ({"prompt": "x"}, [("image", PNG), ("mask", small_mask)], 400, "mask_size_mismatch"),
        ({"prompt": "x", "aspect_ratio": "9:1"}, [("image", PNG)], 400, "invalid_aspect_ratio"),
        ({"prompt": "x", "model": "gpt-image-9"}, [("image", PNG)], 400, "model_not_found"),
        ({"prompt": "x", "max_cost_usd": "0.000001"}, [("image", PNG)], 402, "max_cost_exceeded"),
        ({}, [("image", PNG)], 400, "prompt_missing"),
    ]
    with stack.client(key) as client:
        before = _snapshot(stack, tenant)
        for data, files, status, code in cases:
            response = client.post("/v1/edits/estimate", data=data, files=files)
            assert response.status_code == status, (code, response.text)
            assert response.json()["error"]["code"] == code
        missing = client.post("/v1/edits/estimate", json={"prompt": "x", "image_ids": []})
        assert missing.json()["error"]["code"] == "image_missing"
        assert _snapshot(stack, tenant) == before
        assert client.post("/v1/edits/estimate", content=b"x").json()["error"]["code"] == (
            "unsupported_content_type"
        )
    with stack.client("nope") as stranger:
        assert stranger.post("/v1/edits/estimate", json={}).status_code == 401
