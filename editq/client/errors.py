"""Everything the client raises: one tree, each error with the API's `code`, `message` and `param`.

    EditqError                  code, message, param, status (None: no HTTP answer), job_id, details
    ├── ConnectionFailed        no answer: refused, reset or timed out (`connection_error`, `timeout`)
    ├── BadRequest              400  invalid input (`invalid_parameter`, `image_corrupt`, ...)
    │   ├── UnsupportedMedia    415  a file the API does not accept
    │   └── Unprocessable       422  `Idempotency-Key` reused with another body
    ├── Unauthorized            401  missing, unknown or revoked API key
    ├── PaymentRequired         402  `budget_exceeded`, `max_cost_exceeded`
    │   └── BudgetExceeded           `budget_exceeded` (details: period, limit_usd, remaining_usd)
    ├── Forbidden               403
    ├── NotFound                404  no such job, output or delivery for this tenant
    ├── RequestTimeout          408  the body did not arrive in time
    ├── Conflict                409  `job_finished`, `idempotency_key_in_use`
    │   └── JobFinished              `job_finished`: the job ended before the cancel
    ├── PayloadTooLarge         413
    ├── RateLimited             429  retry_after
    ├── ServerError             5xx
    │   └── Unavailable         503  retry_after; nothing was written
    ├── JobNotSucceeded              a download from a job without outputs (yet)
    └── InvalidWebhook               `verify_webhook`: bad signature, stale timestamp, not JSON

Statuses the client does not know map to `BadRequest` (4xx) or `ServerError` (5xx).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar


class EditqError(Exception):
    """A failure of a call, with the API's stable machine-readable `code`."""

    default_code: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
        job_id: str | None = None,
        details: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.status = status
        self.job_id = job_id
        self.details: dict[str, Any] = dict(details or {})
        self.retry_after = retry_after

    def __str__(self) -> str:
        """One line: `[job id: ]status code: message`."""
        job = f"{self.job_id}: " if self.job_id and self.job_id not in self.message else ""
        status = f"{self.status} " if self.status else ""
        return f"{job}{status}{self.code}: {self.message}"


class ConnectionFailed(EditqError):
    """No answer: the connection was refused, reset or timed out."""

    default_code = "connection_error"


class BadRequest(EditqError):
    """The API refused the input (400, and other 4xx the client does not know)."""


class UnsupportedMedia(BadRequest):
    """A file of a kind the API does not accept (415)."""


class Unprocessable(BadRequest):
    """The `Idempotency-Key` was used before with another body (422)."""


class Unauthorized(EditqError):
    """Missing, unknown or revoked API key (401)."""


class PaymentRequired(EditqError):
    """The job does not fit a budget or its `max_cost_usd` (402)."""


class BudgetExceeded(PaymentRequired):
    """A budget period has too little left; `details` has `period`, `limit_usd`, `remaining_usd`."""


class Forbidden(EditqError):
    """The key may not do this (403)."""


class NotFound(EditqError):
    """No such job, output or delivery for this tenant (404)."""


class RequestTimeout(EditqError):
    """The request body did not arrive in time (408)."""


class Conflict(EditqError):
    """The current state does not allow it (409)."""


class JobFinished(Conflict):
    """The job had already ended; `details["status"]` says how."""


class PayloadTooLarge(EditqError):
    """A file or the request is over its size limit (413)."""


class RateLimited(EditqError):
    """Too much at once (429); `retry_after` says when to try again."""


class ServerError(EditqError):
    """The API failed (5xx)."""


class Unavailable(ServerError):
    """Redis or S3 cannot take the request now (503); nothing was written."""


class JobNotSucceeded(EditqError):
    """The job has no outputs to download: it has not finished, or did not succeed."""

    default_code = "job_not_succeeded"


class InvalidWebhook(EditqError):
    """A webhook whose signature, timestamp or body does not check out."""

    default_code = "invalid_webhook"


BY_STATUS: dict[int, type[EditqError]] = {
    400: BadRequest,
    401: Unauthorized,
    402: PaymentRequired,
    403: Forbidden,
    404: NotFound,
    408: RequestTimeout,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMedia,
    422: Unprocessable,
    429: RateLimited,
    503: Unavailable,
}
BY_CODE: dict[str, type[EditqError]] = {"budget_exceeded": BudgetExceeded, "job_finished": JobFinished}


def retry_after(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` in seconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when.tzinfo else None


def from_answer(
    status: int, content: bytes, headers: Mapping[str, str], job_id: str | None = None
) -> EditqError:
    """The error for an answer with an error status: the API's envelope, or what came instead."""
    try:
        body = json.loads(content)
        error = body["error"] if isinstance(body, dict) else None
    except (ValueError, KeyError):
        error = None
    if not isinstance(error, dict):
        text = content[:300].decode(errors="replace").strip()
        error = {"code": f"http_{status}", "message": text or f"HTTP {status}"}
    return from_error(error, status, job_id=job_id, retry=retry_after(headers))


def from_error(
    error: Mapping[str, Any], status: int | None, *, job_id: str | None = None, retry: float | None = None
) -> EditqError:
    """The error for the API's `{"code", "message", "param", ...}` (also a refused batch item)."""
    code = str(error.get("code") or f"http_{status}")
    kind = BY_CODE.get(code) or BY_STATUS.get(status or 0)
    if kind is None:
        kind = ServerError if (status or 0) >= 500 else BadRequest
    details = {k: v for k, v in error.items() if k not in ("code", "message", "param")}
    param = error.get("param")
    return kind(
        str(error.get("message") or code),
        code=code,
        param=param if isinstance(param, str) else None,
        status=status,
        job_id=job_id,
        details=details,
        retry_after=retry,
    )
