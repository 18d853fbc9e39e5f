"""Lines of a provider Batch API file, for the economy lane.

A request line asks for one job's edit: `{"custom_id": <job id>, "method": "POST", "url":
"/v1/images/edits", "body": {...}}`, the body being the edit endpoint's JSON form (images and
mask by reference: a provider file id or a URL). The provider answers each line in its output
file (requests that ran) or its error file (requests that failed or never ran), as
`{"id", "custom_id", "response": {"status_code", "request_id", "body"} | null,
"error": {"code", "message"} | null}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from editq.options import EditPlan

ENDPOINT = "/v1/images/edits"
#: The only completion window the Batch API offers.
COMPLETION_WINDOW = "24h"
COMPLETION_WINDOW_SECONDS = 24 * 3600
#: The Batch API's limits per input file.
MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200_000_000
#: The longest image reference editq writes: a provider file id, or a presigned URL.
MAX_REFERENCE_BYTES = 2048
#: Metadata key naming editq's batch on the provider's batch (to find it again after a crash).
METADATA_KEY = "editq_batch"


def reference(*, file_id: str | None = None, url: str | None = None) -> dict[str, str]:
    """An `ImageRefParam`: exactly one of a file id or a URL."""
    if (file_id is None) == (url is None):
        raise ValueError("an image reference is a file id or a URL")
    if file_id is not None:
        return {"file_id": file_id}
    assert url is not None
    if len(url) > MAX_REFERENCE_BYTES:
        raise ValueError(f"an image URL is longer than {MAX_REFERENCE_BYTES} bytes")
    return {"image_url": url}


def request_body(
    plan: EditPlan, images: list[dict[str, str]], mask: dict[str, str] | None, user: str | None
) -> dict[str, Any]:
    """The JSON edit body for `plan` (the multipart fields, typed as JSON); `model` is always
    sent."""
    body: dict[str, Any] = {
        "model": plan.api_model,
        "prompt": plan.prompt,
        "images": images,
        "n": plan.n,
        "size": plan.size,
        "quality": plan.quality,
        "output_format": plan.output_format,
        "background": plan.background,
    }
    if mask is not None:
        body["mask"] = mask
    if plan.output_compression is not None:
        body["output_compression"] = plan.output_compression
    if plan.input_fidelity is not None:
        body["input_fidelity"] = plan.input_fidelity
    if user:
        body["user"] = user
    return body


def request_line(custom_id: str, body: dict[str, Any]) -> bytes:
    """One line of an input file, newline included."""
    line = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def line_bound(custom_id: str, plan: EditPlan, images: int, mask: bool, user: str | None) -> int:
    """The most a job's request line can weigh, whatever its references turn out to be."""
    placeholder = reference(url="x" * MAX_REFERENCE_BYTES)
    body = request_body(plan, [placeholder] * images, placeholder if mask else None, user)
    return len(request_line(custom_id, body))


@dataclass(frozen=True)
class Result:
    """One line of an output or error file."""

    custom_id: str
    #: The request's HTTP status; None when it never ran (`error` says why).
    status: int | None
    body: dict[str, Any] | None
    error: dict[str, Any] | None
    request_id: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.body is not None


def parse_result(line: bytes | str) -> Result:
    """A result line; ValueError when it is not one."""
    data = json.loads(line)
    response = data.get("response") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("custom_id"), str):
        problem = "a result line without a custom_id"
    elif response is not None and not isinstance(response, dict):
        problem = "a result line whose response is not an object"
    else:
        problem = ""
    if problem:
        raise ValueError(problem)
    error = data.get("error")
    status = response.get("status_code") if response else None
    body = response.get("body") if response else None
    return Result(
        custom_id=data["custom_id"],
        status=status if isinstance(status, int) and not isinstance(status, bool) else None,
        body=body if isinstance(body, dict) else None,
        error=error if isinstance(error, dict) else None,
        request_id=str(response["request_id"]) if response and response.get("request_id") else None,
    )
