"""The OpenAI-compatible route's pure parts: how refusals and failed jobs map onto OpenAI's
statuses and error shape, how a finished job becomes an `ImagesResponse`, and how OpenAI's
bodies are read."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from editq.api.compat_errors import Refusal, job_ended, job_failure, wait_ran_out
from editq.api.compat_inputs import data_url_bytes, split_json
from editq.api.routes.compat import images_response, openai_usage
from editq.errors import InvalidRequest, PayloadTooLarge
from editq.job import Job

#: editq status and code -> OpenAI status, type and code.
MAPPED = [
    (400, "invalid_n", 400, "invalid_request_error", "invalid_n"),
    (401, "invalid_api_key", 401, "invalid_request_error", "invalid_api_key"),
    (402, "budget_exceeded", 429, "insufficient_quota", "insufficient_quota"),
    (402, "max_cost_exceeded", 429, "insufficient_quota", "insufficient_quota"),
    (429, "too_many_uploads", 429, "requests", "rate_limit_exceeded"),
    (400, "model_not_found", 404, "invalid_request_error", "model_not_found"),
    (400, "model_retired", 404, "invalid_request_error", "model_retired"),
    (400, "model_unavailable", 404, "invalid_request_error", "model_unavailable"),
    (413, "image_too_large", 400, "invalid_request_error", "image_too_large"),
    (415, "unsupported_image_format", 400, "invalid_request_error", "unsupported_image_format"),
    (409, "idempotency_key_in_use", 409, "invalid_request_error", "idempotency_key_in_use"),
    (422, "idempotency_key_reused", 422, "invalid_request_error", "idempotency_key_reused"),
    (503, "storage_unavailable", 503, "server_error", "storage_unavailable"),
]


@pytest.mark.parametrize(("status", "code", "to_status", "kind", "to_code"), MAPPED)
def test_refusals_take_openai_statuses_and_types(
    status: int, code: str, to_status: int, kind: str, to_code: str
) -> None:
    refused = Refusal(status, code, "why", "param", {"limit_usd": "1.00"}, {"Retry-After": "2"})
    answered, body, headers = refused.openai()
    assert answered == to_status
    assert body["error"]["type"] == kind
    assert body["error"]["code"] == to_code
    assert (body["error"]["message"], body["error"]["param"], body["error"]["limit_usd"]) == (
        "why",
        "param",
        "1.00",
    )
    assert body["error"].get("editq_code") == (None if code == to_code else code)
    if kind == "insufficient_quota":
        assert headers == {"x-should-retry": "false"}, "an exhausted budget is not retried"
    else:
        assert headers == {"Retry-After": "2"}


def test_the_path_decides_the_shape() -> None:
    refused = Refusal(402, "budget_exceeded", "over", None)
    assert refused.for_path("/v1/edits") == (
        402,
        {"error": {"code": "budget_exceeded", "message": "over", "param": None}},
        {},
    )
    assert refused.for_path("/v1/images/edits")[0] == 429


FAILURES = [
    ({"code": "moderation_blocked", "message": "no", "moderation_details": {"categories": ["x"]}}, 400),
    ({"code": "provider_rejected", "message": "bad", "provider_status": 400}, 400),
    ({"code": "model_unavailable", "message": "not served"}, 404),
    ({"code": "insufficient_quota", "message": "account quota", "account_paused": True}, 429),
    ({"code": "provider_timeout", "message": "slow"}, 502),
    ({"code": "provider_server_error", "message": "500"}, 502),
    ({"code": "worker_lost", "message": "lost"}, 500),
    ({"code": "output_storage_failed", "message": "s3"}, 500),
    ({}, 500),
]


@pytest.mark.parametrize(("error", "status"), FAILURES)
def test_failed_jobs_answer_with_their_code_and_are_never_retried(error: dict[str, Any], status: int) -> None:
    answered, body, headers = job_failure(error).openai()
    assert answered == status
    assert body["error"]["code"] == (
        "insufficient_quota" if status == 429 else error.get("code", "job_failed")
    )
    assert headers["x-should-retry"] == "false"
    if error.get("code") == "moderation_blocked":
        assert body["error"]["type"] == "image_generation_user_error"
        assert body["error"]["moderation_details"] == {"categories": ["x"]}
    if status >= 500:
        assert body["error"]["type"] == "server_error"


def test_ended_and_late_jobs() -> None:
    canceled = job_ended("edit_1", "canceled").openai()
    assert (canceled[0], canceled[1]["error"]["code"]) == (409, "job_canceled")
    late = wait_ran_out("edit_1", 300).openai()
    assert (late[0], late[1]["error"]["code"], late[1]["error"]["job_id"]) == (504, "wait_timeout", "edit_1")
    assert "GET /v1/edits/edit_1" in late[1]["error"]["message"]
    assert late[2] == {"x-should-retry": "false"}


def _job(**fields: str) -> Job:
    base = {
        "id": "edit_1",
        "tenant": "t",
        "status": "succeeded",
        "created_at": "1795694400000",
        "finished_at": "1795694405500",
        "plan": json.dumps({"size": "auto", "quality": "auto", "background": "auto", "output_format": "png"}),
    }
    return Job.from_hash({**base, **fields})


def test_a_finished_job_becomes_images_response() -> None:
    usage = {
        "input_tokens": 300,
        "output_tokens": 1568,
        "input_tokens_details": {"text_tokens": 38, "image_tokens": 262},
        "provider_request_id": "req_1",
    }
    outputs = [
        {"key": f"k{i}", "width": 1536, "height": 1024, "echo": {"quality": "medium", "background": "opaque"}}
        for i in range(2)
    ]
    job = _job(outputs=json.dumps(outputs), usage=json.dumps(usage))
    answer = images_response(job, [b"one", b"two"])
    assert answer == {
        "created": 1795694405,
        "data": [
            {"b64_json": base64.b64encode(b"one").decode()},
            {"b64_json": base64.b64encode(b"two").decode()},
        ],
        "background": "opaque",
        "output_format": "png",
        "size": "1536x1024",
        "quality": "medium",
        "usage": {
            "input_tokens": 300,
            "output_tokens": 1568,
            "total_tokens": 1868,
            "input_tokens_details": {"text_tokens": 38, "image_tokens": 262},
        },
    }


def test_what_editq_cannot_tell_is_left_out() -> None:
    job = _job(outputs=json.dumps([{"key": "k", "width": 1024, "height": 1024}]))
    answer = images_response(job, [b"x"])
    assert set(answer) == {"created", "data", "output_format", "size"}
    shaped = openai_usage({"input_tokens": 1, "output_tokens": 2, "total_tokens": 3})
    assert shaped is not None
    assert shaped["total_tokens"] == 3
    details = openai_usage({"output_tokens_details": {"image_tokens": 5, "text_tokens": 1}})
    assert details is not None
    assert details["output_tokens_details"] == {"image_tokens": 5, "text_tokens": 1}


def test_data_urls() -> None:
    png = b"\x89PNG fake"
    encoded = base64.b64encode(png).decode()
    assert data_url_bytes(f"data:image/png;base64,{encoded}", "images[0]", 100) == png
    assert data_url_bytes(f"DATA:image/png;name=a.png;base64,{encoded}", "images[0]", 100) == png
    with pytest.raises(PayloadTooLarge) as big:
        data_url_bytes("data:image/png;base64," + "A" * 1_000_000, "mask", 1000)
    assert (big.value.code, big.value.param) == ("mask_too_large", "mask")
    for bad, code in (
        ("https://example.com/a.png", "image_url_not_supported"),
        ("//example.com/a.png", "image_url_not_supported"),
        ("data:image/png," + encoded, "invalid_image_url"),
        (f"data:image/png;base64,{encoded[:4]} {encoded[4:]}", "invalid_image_url"),
        ("data:image/png;base64,abc", "invalid_image_url"),
    ):
        with pytest.raises(InvalidRequest) as refused:
            data_url_bytes(bad, "images[0]", 100)
        assert (refused.value.code, refused.value.param) == (code, "images[0]")


def test_json_bodies() -> None:
    options, images, mask = split_json(
        {"prompt": "x", "images": [{"file_id": "img_1"}], "n": 2, "user": None}
    )
    assert (options.prompt, options.n, options.user, options.reuse) == ("x", 2, None, False)
    assert (images, mask) == ([{"file_id": "img_1"}], None)
    for body, code in (
        ([], "invalid_json"),
        ({"prompt": "x", "strength": "low"}, "unknown_parameter"),
        ({"prompt": "x", "stream": True}, "stream_unsupported"),
        ({"prompt": "x", "stream": "yes"}, "invalid_parameter"),
        ({"prompt": "x", "partial_images": 4}, "invalid_parameter"),
        ({"prompt": "x", "response_format": "url"}, "unsupported_response_format"),
        ({"prompt": "x", "moderation": "low"}, "unsupported_moderation"),
        ({"images": []}, "prompt_missing"),
    ):
        with pytest.raises(InvalidRequest) as refused:
            split_json(body)
        assert refused.value.code == code, body
