"""OpenAI's error shape for the OpenAI-compatible routes (`/v1/images/*`).

`{"error": {"message", "type", "param", "code"}}`, with the statuses the `openai` SDK turns into
its exceptions: 400 `BadRequestError`, 401 `AuthenticationError`, 404 `NotFoundError`, 409
`ConflictError`, 422 `UnprocessableEntityError`, 429 `RateLimitError`, 5xx
`InternalServerError`. The rest of the API keeps editq's envelope; `Refusal.for_path` decides.

editq's refusals keep their codes, except where OpenAI's API has its own: an exhausted budget (or
credit balance) is 429 `insufficient_quota` and too many uploads at once 429
`rate_limit_exceeded` (editq's code stays in `editq_code`). Files over a limit or of a refused
kind are 400, as OpenAI answers them; unknown, retired and unserved models are 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Paths that answer in OpenAI's shapes.
COMPAT_PREFIX = "/v1/images/"

MODEL_CODES = frozenset({"model_not_found", "model_retired", "model_unavailable"})
QUOTA_CODES = frozenset(
    {"budget_exceeded", "max_cost_exceeded", "insufficient_credits", "insufficient_quota"}
)
#: The job ran (or was accepted) and failed: the SDK must not send it again by itself.
NO_RETRY = {"x-should-retry": "false"}
#: Job failures that come from the provider's side of the call.
PROVIDER_FAILURES = frozenset(
    {
        "provider_timeout",
        "provider_unreachable",
        "provider_server_error",
        "provider_bad_response",
        "provider_auth_failed",
        "provider_error",
        "rate_limited",
    }
)


def is_compat(path: str) -> bool:
    return path.startswith(COMPAT_PREFIX)


@dataclass(frozen=True)
class Refusal:
    """One refusal, before it takes editq's or OpenAI's shape."""

    status: int
    code: str
    message: str
    param: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def editq(self) -> tuple[int, dict[str, Any], dict[str, str]]:
        error = {"code": self.code, "message": self.message, "param": self.param, **self.extra}
        return self.status, {"error": error}, self.headers

    def openai(self) -> tuple[int, dict[str, Any], dict[str, str]]:
        status, kind, code = _openai_status(self.status, self.code)
        error: dict[str, Any] = {"message": self.message, "type": kind, "param": self.param, "code": code}
        if code != self.code:
            error["editq_code"] = self.code
        error.update({k: v for k, v in self.extra.items() if k not in error})
        headers = dict(self.headers)
        if kind == "insufficient_quota":
            headers.update(NO_RETRY)
            headers.pop("Retry-After", None)
        return status, {"error": error}, headers

    def for_path(self, path: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        return self.openai() if is_compat(path) else self.editq()


def _openai_status(status: int, code: str) -> tuple[int, str, str]:
    """OpenAI's status, error type and code for an editq refusal."""
    if code in QUOTA_CODES:
        return 429, "insufficient_quota", "insufficient_quota"
    if status == 429:
        return 429, "requests", "rate_limit_exceeded"
    if code in MODEL_CODES:
        status = 404
    elif status in (413, 415):
        status = 400
    if status >= 500:
        kind = "server_error"
    elif code == "moderation_blocked":
        kind = "image_generation_user_error"
    else:
        kind = "invalid_request_error"
    return status, kind, code


def job_failure(error: dict[str, Any]) -> Refusal:
    """The refusal for a compat call whose job failed (`error` is the job's)."""
    code = str(error.get("code") or "job_failed")
    message = str(error.get("message") or "the edit failed")
    extra = {k: v for k, v in error.items() if k not in ("code", "message", "param")}
    param = error.get("param") if isinstance(error.get("param"), str) else None
    if code in ("moderation_blocked", "provider_rejected"):
        status = 400
    elif code in MODEL_CODES:
        status = 404
    elif code in QUOTA_CODES:
        status = 429
    elif code in PROVIDER_FAILURES:
        status = 502
    else:
        status = 500
    return Refusal(status, code, message, param, extra, dict(NO_RETRY))


def job_ended(job_id: str, status: str) -> Refusal:
    """A compat call whose job was canceled or expired before it ran."""
    why = "was canceled" if status == "canceled" else "expired before it started (Cancel-After)"
    return Refusal(409, f"job_{status}", f"the job {job_id} {why}", None, {}, dict(NO_RETRY))


def wait_ran_out(job_id: str, seconds: float) -> Refusal:
    """The job did not end within the compat wait: it keeps running."""
    return Refusal(
        504,
        "wait_timeout",
        f"the job {job_id} did not finish within {seconds:g} s; it keeps running: follow it at "
        f"GET /v1/edits/{job_id} (its id is also in the editq-job-id header)",
        None,
        {"job_id": job_id},
        dict(NO_RETRY),
    )
