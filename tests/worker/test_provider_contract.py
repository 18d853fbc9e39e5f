"""Every request the OpenAI provider builds, checked against the spec extract
(tests/contract/openai-images-edit-openapi.yaml, verbatim from openai/openai-openapi), and every
answer mapped into the error tree."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from editq import catalogue
from editq.api.multipart import Form, Limits, read_form
from editq.options import parse_options, plan_edit
from editq.worker.provider import failures
from editq.worker.provider.openai import (
    AzureProvider,
    EditCall,
    OpenAIProvider,
    Upload,
    rate_headers,
    retry_after,
)

SPEC = yaml.safe_load(
    (Path(__file__).parents[1] / "contract" / "openai-images-edit-openapi.yaml").read_text()
)
SCHEMA = SPEC["components"]["schemas"]["CreateImageEditRequest"]
PROPS = SCHEMA["properties"]
CAT = catalogue.load()
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64
OK_BODY = {
    "created": 1,
    "data": [{"b64_json": base64.b64encode(PNG).decode()}],
    "usage": {
        "input_tokens": 10,
        "output_tokens": 272,
        "total_tokens": 282,
        "input_tokens_details": {"text_tokens": 4, "image_tokens": 6},
    },
}


def _enum(prop: dict[str, Any]) -> list[Any] | None:
    if "enum" in prop:
        return list(prop["enum"])
    for option in prop.get("anyOf", []):
        if "enum" in option:
            return None  # anyOf with a free string: any value passes the schema
    return None


async def _stream(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _form(request: httpx.Request) -> Form:
    limits = Limits({}, 10**8, 10**6, 10**9, 100)
    return asyncio.run(read_form(request.headers["content-type"], _stream(request.read()), limits))


def _plan(model: str = "gpt-image-1-mini") -> Any:
    return plan_edit(
        parse_options({"prompt": "x"}), CAT.models[model], model, image_count=1, first_image=(100, 100)
    )


def _capture(answer: httpx.Response | None = None) -> tuple[list[httpx.Request], httpx.Client]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return (
            answer
            if answer is not None
            else httpx.Response(200, json=OK_BODY, headers={"x-request-id": "req_1"})
        )

    return seen, httpx.Client(transport=httpx.MockTransport(handler))


def check_against_spec(request: httpx.Request, images: int, mask: bool) -> dict[str, list[str]]:
    assert request.method == "POST"
    assert request.url.path.endswith("/images/edits")
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    form = _form(request)
    fields = dict(form.fields)
    for name, values in fields.items():
        assert name in PROPS, f"{name} is not a CreateImageEditRequest field"
        assert len(values) == 1
        prop = PROPS[name]
        value = values[0]
        allowed = _enum(prop) if "anyOf" not in prop or name != "input_fidelity" else ["low", "high"]
        if allowed is not None:
            assert value in [str(a) for a in allowed], (name, value, allowed)
        if prop.get("type") == "integer":
            number = int(value)
            assert prop.get("minimum", number) <= number <= prop.get("maximum", number), (name, number)
    for required in SCHEMA["required"]:
        assert required in fields or required in form.files or f"{required}[]" in form.files
    if images == 1:
        assert set(form.files) - {"mask"} == {"image"}
    else:
        assert len(form.files["image[]"]) == images
        image_prop = next(o for o in PROPS["image"]["anyOf"] if o.get("type") == "array")
        assert images <= image_prop["maxItems"]
    assert ("mask" in form.files) == mask
    assert "model" in fields
    form.close()
    return fields


GRID = [
    (model, opts, images, mask)
    for model, opts, images, mask in itertools.product(
        ["gpt-image-1-mini", "gpt-image-1", "gpt-image-1.5", "gpt-image-2"],
        [
            {},
            {"size": "1536x1024", "quality": "high"},
            {"aspect_ratio": "16:9", "strength": "low"},
            {"output_format": "webp", "output_compression": "70", "background": "transparent"},
            {"output_format": "webp", "output_compression": "70", "background": "opaque"},
            {"output_format": "jpeg", "quality": "low", "n": "4"},
            {"strength": "high", "size": "1024x1536"},
            {"size": "2048x1152", "quality": "medium"},
        ],
        [1, 16],
        [False, True],
    )
    if opts.get("background") != "transparent" or "transparent" in CAT.models[model].backgrounds
    if "x" not in opts.get("size", "")
    or opts["size"] in CAT.models[model].sizes
    or CAT.models[model].arbitrary_sizes
]


@pytest.mark.parametrize(("model", "opts", "images", "mask"), GRID)
def test_requests_match_the_spec(model: str, opts: dict[str, str], images: int, mask: bool) -> None:
    plan = plan_edit(
        parse_options({"prompt": "make it nighttime", **opts}),
        CAT.models[model],
        model,
        image_count=images,
        first_image=(1024, 768),
    )
    seen, client = _capture()
    provider = OpenAIProvider(client, "https://api.example.test/v1", "sk-test")
    uploads = [Upload(f"i{i}.png", PNG, "image/png") for i in range(images)]
    result = provider.edit(
        EditCall(plan, uploads, Upload("m.png", PNG, "image/png") if mask else None, user="u1")
    )
    assert result.images == [PNG]
    assert result.request_id == "req_1"
    [request] = seen
    assert str(request.url) == "https://api.example.test/v1/images/edits"
    assert request.headers["authorization"] == "Bearer sk-test"
    fields = check_against_spec(request, images, mask)
    assert fields["model"] == [model]
    assert fields["prompt"] == [plan.prompt]
    assert fields["user"] == ["u1"]
    if not CAT.models[model].input_fidelity:
        assert "input_fidelity" not in fields


def test_azure_url_and_key() -> None:
    plan = _plan()
    seen, client = _capture()
    provider = AzureProvider(
        client,
        "https://res.openai.azure.com/",
        "az-key",
        "2025-04-01-preview",
        {"gpt-image-1-mini": "mini-deploy"},
    )
    provider.edit(EditCall(plan, [Upload("a.png", PNG, "image/png")]))
    [request] = seen
    assert str(request.url) == (
        "https://res.openai.azure.com/openai/deployments/mini-deploy/images/edits?api-version=2025-04-01-preview"
    )
    assert request.headers["api-key"] == "az-key"
    assert "authorization" not in request.headers
    check_against_spec(request, 1, False)


def _error(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return httpx.Response(
        status, content=content, headers={"content-type": "application/json", **(headers or {})}
    )


@pytest.mark.parametrize(
    ("response", "kind", "retry"),
    [
        (
            _error(
                429,
                {
                    "error": {
                        "message": "Rate limit",
                        "type": "requests",
                        "param": None,
                        "code": "rate_limit_exceeded",
                    }
                },
                {
                    "retry-after": "3",
                    "x-ratelimit-limit-requests": "50",
                    "x-ratelimit-remaining-requests": "0",
                },
            ),
            failures.RateLimited,
            3.0,
        ),
        (
            _error(
                429,
                {
                    "error": {
                        "message": "quota",
                        "type": "insufficient_quota",
                        "param": None,
                        "code": "insufficient_quota",
                    }
                },
            ),
            failures.QuotaExceeded,
            None,
        ),
        (
            _error(
                400,
                {
                    "error": {
                        "message": "rejected by the safety system",
                        "type": "image_generation_user_error",
                        "param": None,
                        "code": "moderation_blocked",
                        "moderation_details": {"moderation_stage": "input", "categories": ["violence"]},
                    }
                },
            ),
            failures.ModerationBlocked,
            None,
        ),
        (
            _error(400, {"created": 1, "error": {"code": "contentFilter", "message": "safety"}}),
            failures.ModerationBlocked,
            None,
        ),
        (
            _error(500, {"error": {"message": "oops", "type": "server_error", "param": None, "code": None}}),
            failures.ProviderServerError,
            None,
        ),
        (
            _error(503, b"<html>bad gateway</html>", {"retry-after-ms": "1500"}),
            failures.ProviderServerError,
            1.5,
        ),
        (
            _error(
                401,
                {
                    "error": {
                        "message": "bad key",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            ),
            failures.AuthenticationFailed,
            None,
        ),
        (
            _error(
                400,
                {
                    "error": {
                        "message": "Invalid size",
                        "type": "invalid_request_error",
                        "param": "size",
                        "code": None,
                    }
                },
            ),
            failures.ProviderRejected,
            None,
        ),
        (_error(200, b"not json"), failures.BadResponse, None),
        (_error(200, {"created": 1, "data": []}), failures.BadResponse, None),
        (_error(200, {"created": 1, "data": [{"b64_json": "!!notbase64!!"}]}), failures.BadResponse, None),
    ],
)
def test_answers_map_into_the_error_tree(
    response: httpx.Response, kind: type[failures.ProviderError], retry: float | None
) -> None:
    plan = _plan()
    _, client = _capture(response)
    with pytest.raises(kind) as raised:
        OpenAIProvider(client, "https://x/v1", "k").edit(EditCall(plan, [Upload("a.png", PNG, "image/png")]))
    assert raised.value.retry_after == retry
    retryable = kind in (failures.RateLimited, failures.ProviderServerError)
    assert isinstance(raised.value, failures.Retryable) is retryable
    assert raised.value.to_error()["code"] == kind.code


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ReadTimeout("slow"), failures.ProviderTimeout),
        (httpx.ConnectError("refused"), failures.ProviderUnreachable),
    ],
)
def test_transport_failures(exc: Exception, kind: type[failures.ProviderError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    plan = _plan()
    client = httpx.Client(transport=httpx.MockTransport(handler))
    with pytest.raises(kind) as raised:
        OpenAIProvider(client, "https://x/v1", "k").edit(EditCall(plan, [Upload("a.png", PNG, "image/png")]))
    assert isinstance(raised.value, failures.Retryable)


def test_rate_limit_headers_are_read() -> None:
    headers = httpx.Headers(
        {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-limit-images": "250",
            "x-ratelimit-remaining-images": "12",
            "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT",
        }
    )
    rate = rate_headers(headers)
    assert (rate.limit_requests, rate.remaining_requests, rate.limit_images, rate.remaining_images) == (
        60,
        0,
        250,
        12,
    )
    assert retry_after(headers) == 0.0
    assert retry_after(httpx.Headers({"retry-after": "7200"})) == 3600.0


def test_spec_example_response_parses() -> None:
    example = SPEC["components"]["schemas"]["ImagesResponse"]["x-oaiMeta"]["example"]
    body = json.loads(example.replace('"..."', json.dumps(base64.b64encode(PNG).decode())))
    plan = _plan("gpt-image-1.5")
    _, client = _capture(httpx.Response(200, json=body))
    result = OpenAIProvider(client, "https://x/v1", "k").edit(
        EditCall(plan, [Upload("a.png", PNG, "image/png")])
    )
    assert result.usage == body["usage"]
    assert result.echo == {
        "size": "1024x1024",
        "quality": "high",
        "output_format": "png",
        "background": "transparent",
    }


def test_no_retries_inside_the_http_client() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(
            500, json={"error": {"message": "x", "type": "server_error", "param": None, "code": None}}
        )

    plan = _plan()
    client = httpx.Client(transport=httpx.MockTransport(handler))
    with pytest.raises(failures.ProviderServerError):
        OpenAIProvider(client, "https://x/v1", "k").edit(EditCall(plan, [Upload("a.png", PNG, "image/png")]))
    assert calls == [1]
