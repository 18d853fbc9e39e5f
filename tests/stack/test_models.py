"""Model-faithful jobs through the real stack: sizes and ratios, strength, retirements, aliases,
cost estimated before and settled after."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from editq import cost
from tests import images
from tests.support.stack import Universe

SOURCE = ("a.png", images.scene(1200, 800), "image/png")


def _run(stack: Universe, client: httpx.Client, **data: str) -> dict[str, Any]:
    response = client.post(
        "/v1/edits", data={"prompt": "make it warm and sunny", **data}, files=[("image", SOURCE)]
    )
    assert response.status_code == 202, response.text
    done = stack.wait_job(client, response.json()["id"])
    assert done["status"] == "succeeded", done
    return done


@pytest.mark.parametrize(
    ("data", "dims"),
    [
        ({"aspect_ratio": "16:9"}, (1536, 864)),
        ({"aspect_ratio": "1:1", "model": "gpt-image-1.5"}, (1024, 1024)),
        ({"aspect_ratio": "9:16"}, (864, 1536)),
        ({"aspect_ratio": "match_input"}, (1536, 1024)),
        ({"output_size": "input"}, (1200, 800)),
        ({"aspect_ratio": "4:5", "output_format": "jpeg", "output_compression": "80"}, (1024, 1280)),
        ({"size": "1024x1536"}, (1024, 1536)),
    ],
)
def test_outputs_have_the_promised_dimensions(
    stack: Universe, client: httpx.Client, data: dict[str, str], dims: tuple[int, int]
) -> None:
    done = _run(stack, client, **data)
    [output] = done["outputs"]
    assert (output["width"], output["height"]) == dims
    image = images.decode(client.get(output["url"]).content)
    assert image.size == dims
    if data.get("output_format") == "jpeg":
        assert image.format == "JPEG"


def test_strength_reaches_the_provider(stack: Universe, client: httpx.Client) -> None:
    low = _run(stack, client, model="gpt-image-1.5", strength="low")
    high = _run(stack, client, model="gpt-image-1.5", strength="high")
    assert low["provider_request"]["input_fidelity"] == "high"
    assert high["provider_request"]["input_fidelity"] == "low"
    source = images.cover(images.decode(images.scene(1200, 800)), (1024, 1024))
    low_img = images.decode(client.get(low["outputs"][0]["url"]).content)
    high_img = images.decode(client.get(high["outputs"][0]["url"]).content)
    assert images.mean_difference(source.resize(low_img.size), low_img) < images.mean_difference(
        source.resize(high_img.size), high_img
    )


def test_sunset_headers_and_the_model_called(stack: Universe, client: httpx.Client) -> None:
    response = client.post("/v1/edits", data={"prompt": "rain"}, files=[("image", SOURCE)])
    assert response.headers["sunset"] == "Tue, 01 Dec 2026 00:00:00 GMT"
    assert response.headers["deprecation"].startswith("@")
    snapshot = client.post(
        "/v1/edits", data={"prompt": "rain", "model": "gpt-image-1.5-2025-12-16"}, files=[("image", SOURCE)]
    )
    done = stack.wait_job(client, snapshot.json()["id"])
    assert done["model"] == "gpt-image-1.5-2025-12-16"
    assert done["model_called"] == "gpt-image-1.5-2025-12-16"
    assert done["status"] == "succeeded"


def test_operator_alias_maps_a_retired_model(make_stack: Callable[..., Universe]) -> None:
    u = make_stack(EDITQ_MODEL_ALIASES='{"gpt-image-1": "gpt-image-1.5"}')
    _, key = u.tenant()
    with u.client(key) as client:
        response = client.post(
            "/v1/edits", data={"prompt": "rain", "model": "gpt-image-1"}, files=[("image", SOURCE)]
        )
        assert response.status_code == 202, response.text
        done = u.wait_job(client, response.json()["id"])
    assert done["model"] == "gpt-image-1"
    assert done["model_called"] == "gpt-image-1.5"
    assert done["status"] == "succeeded"


def test_cost_estimated_then_settled(stack: Universe, client: httpx.Client) -> None:
    done = _run(stack, client, model="gpt-image-1.5", quality="low", size="1024x1024")
    usage = cost.Usage.from_api(done["cost"]["usage"])
    expected = usage.text_input * 5 + usage.image_input * 8 + usage.image_output * 32
    assert done["cost"]["actual_usd"] == cost.usd(expected)
    assert float(done["cost"]["estimated_usd"]) >= float(done["cost"]["actual_usd"])
    assert done["cost"]["reserved_usd"] == "0.000000"


def test_models_endpoint(stack: Universe, client: httpx.Client) -> None:
    stack.wait_for_model_listing()
    listed = client.get("/v1/models").json()
    assert listed["default"] == "gpt-image-1-mini"
    assert listed["default_note"] is None
    assert listed["served_checked_at"] is not None
    by_id = {m["id"]: m for m in listed["data"]}
    assert by_id["gpt-image-1"]["retired"] is True
    assert by_id["gpt-image-1"]["served"] is False
    assert by_id["gpt-image-1-mini"]["served"] is True
    assert by_id["gpt-image-1-mini"]["retires_on"] == "2026-12-01"
    assert by_id["gpt-image-1-mini"]["successor"] == "gpt-image-2"
    two = by_id["gpt-image-2"]
    assert (two["prices_confirmed"], two["prices_basis"], two["served"]) == (True, "secondary", True)
    assert two["prices_usd_per_1m_tokens"]["image_output"] == "30"
    ready = client.get("/readyz").json()["checks"]["models"]
    assert [r["model"] for r in ready["retiring_soon"]] == ["gpt-image-1-mini", "gpt-image-1.5"]


def test_gpt_image_2_runs_under_a_budget_at_the_exact_ratio(stack: Universe) -> None:
    _, key = stack.tenant(budgets={"day": 1_000_000})
    with stack.client(key) as client:
        response = client.post(
            "/v1/edits",
            data={"prompt": "x", "model": "gpt-image-2", "aspect_ratio": "21:9", "quality": "low"},
            files=[("image", SOURCE)],
        )
        assert response.status_code == 202, response.text
        done = stack.wait_job(client, response.json()["id"])
        usage_after = client.get("/v1/usage").json()
    assert done["status"] == "succeeded", done
    assert done["provider_request"]["size"] == "1904x816"
    [output] = done["outputs"]
    assert (output["width"], output["height"]) == (1904, 816)  # exactly 21:9, nothing cropped
    usage = cost.Usage.from_api(done["cost"]["usage"])
    assert usage.image_output > 0
    expected = math.ceil(
        usage.text_input * 5 + usage.image_input * 8 + usage.image_output * 30 + usage.text_output * 10
    )
    assert done["cost"]["actual_usd"] == cost.usd(expected)
    assert float(done["cost"]["estimated_usd"]) >= float(done["cost"]["actual_usd"]) > 0
    assert usage_after["budgets"]["day"]["spent_usd"] == cost.usd(expected)
    assert usage_after["budgets"]["day"]["reserved_usd"] == "0.000000"
