"""`POST /v1/images/edits` and `GET /v1/models` through the official `openai` SDK, unchanged but
for `base_url` and `api_key`: edits with one and three images, masks, `n`, `usage`, the SDK's
exceptions where OpenAI would raise them; every call a job with its ledger entries."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from editq.storage import money
from tests import images
from tests.api.test_bad_input import _leftovers
from tests.support.stack import PINNED_OFFSET, PrivateSim, Universe

SCENE = images.scene(320, 240)
MASK = images.mask(320, 240)


def _sdk(stack: Universe, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=key)


@pytest.fixture
def sdk(stack: Universe, tenant: tuple[str, str]) -> Iterator[openai.OpenAI]:
    with _sdk(stack, tenant[1]) as client:
        yield client


def _decoded(b64: str | None) -> Image.Image:
    assert b64 is not None
    return images.decode(base64.b64decode(b64))


def _job_of(response: Any) -> str:
    job_id = response.headers["editq-job-id"]
    assert job_id.startswith("edit_")
    return str(job_id)


def _ledger_kinds(stack: Universe, tenant: str, job_id: str) -> list[str]:
    return [e["kind"] for e in money.ledger(stack.db, tenant) if e["job"] == job_id]


def test_one_image_without_mask(stack: Universe, sdk: openai.OpenAI, tenant: tuple[str, str]) -> None:
    raw = sdk.images.with_raw_response.edit(
        image=("photo.png", SCENE, "image/png"),
        prompt="make it a pencil sketch",
        model="gpt-image-1-mini",
        size="1536x1024",
        quality="low",
    )
    result = raw.parse()
    job_id = _job_of(raw)
    assert raw.headers["x-request-id"].startswith("req_")
    assert result.data is not None
    assert len(result.data) == 1
    assert _decoded(result.data[0].b64_json).size == (1536, 1024)
    assert (result.size, result.quality, result.output_format) == ("1536x1024", "low", "png")
    assert result.background in ("opaque", "transparent")
    assert result.usage is not None
    assert result.usage.output_tokens > 0
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens
    assert result.usage.input_tokens_details.image_tokens > 0
    assert result.created > 0
    job = stack.client(tenant[1]).get(f"/v1/edits/{job_id}").json()
    assert job["status"] == "succeeded"
    assert job["options"]["reuse"] is False
    assert job["cost"]["usage"]["output_tokens"] == result.usage.output_tokens
    assert set(_ledger_kinds(stack, tenant[0], job_id)) >= {"reserved", "settled"}


OTHERS = [
    ("b.png", images.scene(200, 200), "image/png"),
    ("c.jpg", images.scene(256, 128, fmt="JPEG"), "image/jpeg"),
]


@pytest.mark.parametrize(
    ("count", "masked", "n"), [(1, True, 1), (3, False, 1), (3, True, 2)], ids=["1+mask", "3", "3+mask n=2"]
)
def test_one_or_three_images_with_or_without_a_mask(
    stack: Universe, sdk: openai.OpenAI, tenant: tuple[str, str], count: int, masked: bool, n: int
) -> None:
    sources = [("a.png", SCENE, "image/png"), *OTHERS][:count]
    raw = sdk.images.with_raw_response.edit(
        image=sources if count > 1 else sources[0],
        prompt="make it nighttime",
        n=n,
        size="1024x1024",
        quality="low",
        output_format="webp",
        output_compression=80,
        mask=("mask.png", MASK, "image/png") if masked else openai.omit,
    )
    result = raw.parse()
    job_id = _job_of(raw)
    assert result.data is not None
    assert len(result.data) == n
    assert all(_decoded(item.b64_json).format == "WEBP" for item in result.data)
    assert result.output_format == "webp"
    assert result.usage is not None
    job = stack.client(tenant[1]).get(f"/v1/edits/{job_id}").json()
    assert len(job["sources"]) == count
    assert (job["mask"] is not None) is masked
    assert job["provider_request"]["n"] == n
    assert "settled" in _ledger_kinds(stack, tenant[0], job_id)


def _data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def test_json_body_with_data_urls_and_upload_ids(stack: Universe, client: httpx.Client) -> None:
    upload = client.post("/v1/uploads", files={"file": ("b.png", images.scene(100, 80), "image/png")}).json()
    response = client.post(
        "/v1/images/edits",
        json={
            "prompt": "vintage film",
            "images": [{"image_url": _data_url(SCENE)}, {"file_id": upload["id"]}],
            "mask": {"image_url": _data_url(MASK)},
            "quality": "low",
            "size": "1024x1024",
            "moderation": "auto",
            "stream": False,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["data"]) == 1
    assert set(body) == {"created", "data", "background", "output_format", "size", "quality", "usage"}
    job = client.get(f"/v1/edits/{response.headers['editq-job-id']}").json()
    assert [s["id"] for s in job["sources"]][1] == upload["id"]
    assert job["mask"]["width"] == 320


def test_an_idempotent_retry_answers_the_same_job(stack: Universe, client: httpx.Client) -> None:
    def call() -> httpx.Response:
        return client.post(
            "/v1/images/edits",
            data={"prompt": "rain", "quality": "low"},
            files={"image": ("a.png", SCENE, "image/png")},
            headers={"Idempotency-Key": "compat-retry-1"},
        )

    first, second = call(), call()
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.headers["editq-job-id"] == second.headers["editq-job-id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["data"] == second.json()["data"]


def _requests_counted(stack: Universe, status: int) -> float:
    text = httpx.get(f"{stack.api_url}/metrics", timeout=10).text
    pattern = (
        rf'editq_http_requests_total\{{method="POST",route="/v1/images/edits",status="{status}"\}} (\S+)'
    )
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_the_sdk_raises_what_openai_would(stack: Universe) -> None:
    tenant, key = stack.tenant(budgets={"day": 1000})
    before = _requests_counted(stack, 429)
    with _sdk(stack, key) as sdk:
        with pytest.raises(openai.RateLimitError) as quota:
            sdk.images.edit(image=("a.png", SCENE, "image/png"), prompt="x", model="gpt-image-1-mini")
        with pytest.raises(openai.NotFoundError) as unknown:
            sdk.images.edit(image=("a.png", SCENE, "image/png"), prompt="x", model="gpt-image-9")
        with pytest.raises(openai.BadRequestError) as bad_size:
            sdk.images.edit(image=("a.png", SCENE, "image/png"), prompt="x", size="999x999")
        with pytest.raises(openai.BadRequestError) as streaming:
            sdk.images.edit(image=("a.png", SCENE, "image/png"), prompt="x", stream=True)
    with _sdk(stack, "wrong-key") as stranger, pytest.raises(openai.AuthenticationError) as auth:
        stranger.images.edit(image=("a.png", SCENE, "image/png"), prompt="x")
    assert (quota.value.code, quota.value.type) == ("insufficient_quota", "insufficient_quota")
    assert quota.value.body["editq_code"] == "budget_exceeded"  # type: ignore[index]
    assert _requests_counted(stack, 429) - before == 1, "the SDK must not retry an exhausted budget"
    assert (unknown.value.code, unknown.value.param) == ("model_not_found", "model")
    assert bad_size.value.code == "unsupported_size"
    assert bad_size.value.type == "invalid_request_error"
    assert streaming.value.code == "stream_unsupported"
    assert auth.value.code == "invalid_api_key"
    assert _leftovers(stack, tenant) == []


def test_a_job_the_model_refuses_is_a_bad_request_with_its_job(
    stack: Universe, sdk: openai.OpenAI, tenant: tuple[str, str]
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.images.edit(image=("a.png", SCENE, "image/png"), prompt="[moderation] something")
    error = refused.value
    assert (error.code, error.type) == ("moderation_blocked", "image_generation_user_error")
    assert error.response.headers["x-should-retry"] == "false"
    job = stack.client(tenant[1]).get(f"/v1/edits/{error.response.headers['editq-job-id']}").json()
    assert (job["status"], job["error"]["code"]) == ("failed", "moderation_blocked")


def test_models_in_openai_list_shape(stack: Universe, sdk: openai.OpenAI) -> None:
    listed = {m.id: m for m in sdk.models.list()}
    assert {"gpt-image-1-mini", "gpt-image-2"} <= set(listed)
    mini = listed["gpt-image-1-mini"]
    assert (mini.object, mini.owned_by) == ("model", "openai")
    assert mini.created == 1759708800  # 2025-10-06
    one = sdk.models.retrieve("gpt-image-2-2026-04-21")
    assert one.id == "gpt-image-2"
    assert one.model_extra is not None
    assert one.model_extra["served"] is True
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("gpt-image-9")


def _part(name: str, value: bytes, filename: str | None = None) -> tuple[str, Any]:
    return (name, (filename, value, "image/png")) if filename else (name, (None, value))


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, format="PNG")
    return out.getvalue()


IMAGE = _part("image", SCENE, "a.png")
PROMPT = _part("prompt", b"make it rain")
#: name, request (multipart parts or a JSON body), status, code, param.
HOSTILE: list[tuple[str, list[tuple[str, Any]] | dict[str, Any], int, str, str | None]] = [
    (
        "broken image",
        [PROMPT, _part("image", b"\x89PNG\r\n\x1a\nnot really", "a.png")],
        400,
        "image_corrupt",
        "image",
    ),
    (
        "truncated image",
        [PROMPT, _part("image", SCENE[: len(SCENE) // 2], "a.png")],
        400,
        "image_truncated",
        "image",
    ),
    ("no image", [PROMPT], 400, "image_missing", "image"),
    ("17 images", [PROMPT, *[IMAGE] * 17], 400, "too_many_images", "image"),
    ("an editq field", [PROMPT, IMAGE, _part("strength", b"low")], 400, "unknown_parameter", "strength"),
    ("unknown field", [PROMPT, IMAGE, _part("foo", b"1")], 400, "unknown_parameter", "foo"),
    ("unknown file", [PROMPT, IMAGE, _part("extra", SCENE, "x.png")], 400, "unknown_parameter", "extra"),
    ("image as text", [PROMPT, _part("image", b"abc")], 400, "invalid_image", "image"),
    (
        "url answers",
        [PROMPT, IMAGE, _part("response_format", b"url")],
        400,
        "unsupported_response_format",
        "response_format",
    ),
    ("stream", [PROMPT, IMAGE, _part("stream", b"true")], 400, "stream_unsupported", "stream"),
    (
        "mask size",
        [PROMPT, IMAGE, _part("mask", images.mask(10, 10), "m.png")],
        400,
        "mask_size_mismatch",
        "mask",
    ),
    (
        "mask alpha",
        [PROMPT, IMAGE, _part("mask", images.mask(alpha=False), "m.png")],
        400,
        "mask_without_alpha",
        "mask",
    ),
    ("no prompt", [IMAGE], 400, "prompt_missing", "prompt"),
    ("n=11", [PROMPT, IMAGE, _part("n", b"11")], 400, "invalid_n", "n"),
    (
        "http url",
        {"prompt": "x", "images": [{"image_url": "http://169.254.169.254/latest/meta-data"}]},
        400,
        "image_url_not_supported",
        "images[0]",
    ),
    (
        "https url",
        {"prompt": "x", "images": [{"image_url": "https://example.com/a.png"}]},
        400,
        "image_url_not_supported",
        "images[0]",
    ),
    (
        "file url",
        {"prompt": "x", "images": [{"image_url": "file:///etc/passwd"}]},
        400,
        "image_url_not_supported",
        "images[0]",
    ),
    (
        "not base64",
        {"prompt": "x", "images": [{"image_url": "data:image/png;base64,@@@"}]},
        400,
        "invalid_image_url",
        "images[0]",
    ),
    (
        "no ;base64",
        {"prompt": "x", "images": [{"image_url": "data:image/png,abc"}]},
        400,
        "invalid_image_url",
        "images[0]",
    ),
    (
        "data url of text",
        {"prompt": "x", "images": [{"image_url": _data_url(b"hello", "text/plain")}]},
        400,
        "invalid_image",
        "images[0]",
    ),
    (
        "empty data url",
        {"prompt": "x", "images": [{"image_url": "data:image/png;base64,"}]},
        400,
        "image_empty",
        "images[0]",
    ),
    (
        "both refs",
        {"prompt": "x", "images": [{"image_url": _data_url(SCENE), "file_id": "img_" + "0" * 64}]},
        400,
        "invalid_parameter",
        "images[0]",
    ),
    (
        "unknown upload",
        {"prompt": "x", "images": [{"file_id": "img_" + "0" * 64}]},
        400,
        "image_not_found",
        "images[0]",
    ),
    (
        "17 data urls",
        {"prompt": "x", "images": [{"image_url": _data_url(SCENE)}] * 17},
        400,
        "too_many_images",
        "images",
    ),
    (
        "json unknown",
        {"prompt": "x", "images": [{"image_url": _data_url(SCENE)}], "foo": 1},
        400,
        "unknown_parameter",
        "foo",
    ),
    ("json image", {"prompt": "x", "image": _data_url(SCENE)}, 400, "unknown_parameter", "image"),
    (
        "moderation low",
        {"prompt": "x", "images": [{"image_url": _data_url(SCENE)}], "moderation": "low"},
        400,
        "unsupported_moderation",
        "moderation",
    ),
    (
        "mask not png",
        {
            "prompt": "x",
            "images": [{"image_url": _data_url(SCENE)}],
            "mask": {"image_url": _data_url(images.scene(320, 240, fmt="JPEG"))},
        },
        400,
        "mask_not_png",
        "mask",
    ),
    ("a batch body", {"items": []}, 400, "unknown_parameter", "items"),
]


@pytest.mark.parametrize(("name", "sent", "status", "code", "param"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_input_is_refused_in_openai_shape_and_leaves_nothing(
    stack: Universe, name: str, sent: Any, status: int, code: str, param: str | None
) -> None:
    tenant, key = stack.tenant()
    with stack.client(key) as client:
        if isinstance(sent, dict):
            response = client.post("/v1/images/edits", json=sent)
        else:
            response = client.post("/v1/images/edits", files=sent)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error")
    assert error["message"]
    assert "editq-job-id" not in response.headers
    assert _leftovers(stack, tenant) == []


def test_refusals_before_the_route_speak_openai_too(stack: Universe, client: httpx.Client) -> None:
    missing = httpx.post(f"{stack.api_url}/v1/images/edits", files=[IMAGE, PROMPT], timeout=10)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert missing.json()["error"]["code"] == "missing_api_key"
    twice = client.post(
        "/v1/images/edits",
        files=[IMAGE, PROMPT],
        headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
    )
    assert (twice.status_code, twice.json()["error"]["code"]) == (400, "duplicate_header")
    assert twice.json()["error"]["type"] == "invalid_request_error"
    wrong_type = client.post("/v1/images/edits", content=b"x", headers={"Content-Type": "text/plain"})
    assert wrong_type.json()["error"] == {
        "message": "send multipart/form-data or application/json",
        "type": "invalid_request_error",
        "param": "Content-Type",
        "code": "unsupported_content_type",
    }
    editq = client.post("/v1/edits", content=b"x", headers={"Content-Type": "text/plain"})
    assert "type" not in editq.json()["error"], "the rest of the API keeps editq's envelope"


def test_limits_and_a_wait_that_runs_out(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    """Oversize files are refused (400, as OpenAI answers them) before anything is stored; a job
    that outlasts `EDITQ_COMPAT_WAIT_SECONDS` answers 504 with its id and keeps running."""
    sim = make_sim("--latency", "3", "--clock-offset", PINNED_OFFSET)
    small = images.scene(64, 48)
    u = make_stack(
        OPENAI_BASE_URL=sim.url,
        EDITQ_COMPAT_WAIT_SECONDS="1",
        EDITQ_MAX_IMAGE_BYTES=str(len(small) + 100),
        EDITQ_MAX_MASK_BYTES="100",
        beat=False,
    )
    tenant, key = u.tenant()
    big = [("image", ("a.png", SCENE, "image/png")), PROMPT]
    with u.client(key) as client:
        too_big = client.post("/v1/images/edits", files=big)
        too_big_url = client.post(
            "/v1/images/edits", json={"prompt": "x", "images": [{"image_url": _data_url(SCENE)}]}
        )
        big_mask = client.post(
            "/v1/images/edits",
            files=[
                ("image", ("a.png", small, "image/png")),
                ("mask", ("m.png", images.mask(64, 48), "image/png")),
                PROMPT,
            ],
        )
    for response, code in (
        (too_big, "image_too_large"),
        (too_big_url, "image_too_large"),
        (big_mask, "mask_too_large"),
    ):
        assert response.status_code == 400, response.text
        assert (response.json()["error"]["code"], response.json()["error"]["type"]) == (
            code,
            "invalid_request_error",
        )
    assert _leftovers(u, tenant) == []
    with _sdk(u, key) as sdk, pytest.raises(openai.InternalServerError) as late:
        sdk.images.edit(image=("a.png", small, "image/png"), prompt="make it rain")
    assert late.value.status_code == 504
    assert (late.value.code, late.value.type) == ("wait_timeout", "server_error")
    headers = late.value.response.headers
    assert headers["x-should-retry"] == "false"
    with u.client(key) as client:
        listed = client.get("/v1/edits").json()["data"]
        assert [job["id"] for job in listed] == [headers["editq-job-id"]], "one call, one job: no retry"
        assert u.wait_job(client, headers["editq-job-id"])["status"] == "succeeded"
