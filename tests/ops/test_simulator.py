"""The simulator speaks OpenAI's edit API: the official SDK calls it unchanged."""

from __future__ import annotations

import base64
import io

import httpx
import openai
import pytest
from openai import OpenAI

from editq.ops import launcher
from tests import images
from tests.support.stack import Services


@pytest.fixture(scope="module")
def sim_url() -> object:
    port = launcher.free_port()
    proc = launcher.simulator(port, args=["--rpm", "5", "--ipm", "6", "--api-key", "sk-sim"], echo=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def test_official_sdk_edit(sim_url: str) -> None:
    client = OpenAI(base_url=f"{sim_url}/v1", api_key="sk-sim", max_retries=0)
    result = client.images.edit(
        model="gpt-image-1.5",
        image=[("a.png", images.scene(), "image/png"), ("b.png", images.scene(320, 240), "image/png")],
        prompt="make it vintage film",
        size="1536x1024",
        quality="low",
        input_fidelity="high",
    )
    assert result.data is not None
    output = images.decode(base64.b64decode(result.data[0].b64_json or ""))
    assert output.size == (1536, 1024)
    assert result.size == "1536x1024"
    assert result.quality == "low"
    assert result.usage is not None
    assert result.usage.output_tokens == 400
    # 640x480 and 320x240 both scale to 683x512: two 512px tiles each, plus high fidelity
    assert result.usage.input_tokens_details.image_tokens == 2 * (65 + 129 * 2) + 2 * 6240


def test_official_sdk_sees_errors_and_rate_limits(sim_url: str) -> None:
    client = OpenAI(base_url=f"{sim_url}/v1", api_key="sk-sim", max_retries=0)
    with pytest.raises(openai.BadRequestError) as bad:
        client.images.edit(
            model="gpt-image-1-mini",
            image=("a.png", images.scene(), "image/png"),
            prompt="x",
            input_fidelity="high",
        )
    assert bad.value.code == "unsupported_parameter"
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=f"{sim_url}/v1", api_key="wrong", max_retries=0).images.edit(
            model="gpt-image-1-mini", image=("a.png", images.scene(), "image/png"), prompt="x"
        )
    statuses = []
    limited: list[openai.RateLimitError] = []
    for _ in range(8):
        try:
            client.images.edit(
                model="gpt-image-1-mini",
                image=("a.png", images.scene(64, 64), "image/png"),
                prompt="x",
                quality="low",
            )
            statuses.append(200)
        except openai.RateLimitError as exc:
            statuses.append(429)
            limited.append(exc)
    assert statuses[:4] == [200] * 4
    assert limited
    assert limited[0].code == "rate_limit_exceeded"
    assert int(limited[0].response.headers["retry-after"]) >= 1
    assert limited[0].response.headers["x-ratelimit-limit-requests"] == "5"


def test_mask_moderation_and_stats(services: Services) -> None:
    base = services.sim_url.removesuffix("/v1")
    form = {"model": "gpt-image-1-mini", "prompt": "[moderation] something", "size": "1024x1024"}
    files = [
        ("image", ("a.png", images.scene(), "image/png")),
        ("mask", ("m.png", images.mask(), "image/png")),
    ]
    blocked = httpx.post(
        f"{base}/v1/images/edits", data=form, files=files, headers={"Authorization": "Bearer x"}
    )
    assert blocked.status_code == 400
    assert blocked.json()["error"]["code"] == "moderation_blocked"
    bad_mask = [
        ("image", ("a.png", images.scene(), "image/png")),
        ("mask", ("m.png", images.mask(10, 10), "image/png")),
    ]
    response = httpx.post(f"{base}/v1/images/edits", data={**form, "prompt": "rain"}, files=bad_mask)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "mask"
    unknown = httpx.post(
        f"{base}/v1/images/edits", data={**form, "prompt": "rain", "colour": "red"}, files=files[:1]
    )
    assert unknown.json()["error"]["code"] == "unknown_parameter"
    stats = httpx.get(f"{base}/_sim/stats").json()
    assert stats["by_status"]["400"] >= 3
    assert "not a generative model" in httpx.get(base).text


def test_outputs_are_deterministic(services: Services) -> None:
    url = services.sim_url + "/images/edits"
    form = {
        "model": "gpt-image-1-mini",
        "prompt": "black and white",
        "size": "1024x1024",
        "output_format": "png",
    }
    files = [("image", ("a.png", images.scene(), "image/png"))]
    first = httpx.post(url, data=form, files=files, timeout=30).json()["data"][0]["b64_json"]
    second = httpx.post(url, data=form, files=files, timeout=30).json()["data"][0]["b64_json"]
    assert first == second
    gray = images.decode(base64.b64decode(first)).convert("RGB")
    r, g, _ = gray.split()
    assert images.mean_difference(r.convert("RGB"), g.convert("RGB")) < 25
    assert io.BytesIO(base64.b64decode(first)).getbuffer().nbytes > 1000
