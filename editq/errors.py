"""Admission errors: everything a client can be refused with, and the HTTP status for each.

    EditqError                      code, message, param, status
    ├── InvalidRequest              400  malformed or invalid input
    │   └── UnsupportedMedia        415  a file editq cannot accept
    ├── Unauthorized                401  missing or wrong API key
    ├── PaymentRequired             402  budget or max_cost_usd would be exceeded
    ├── Forbidden                   403  a valid key without the right (a tenant key on the admin API)
    ├── NotFound                    404  missing, or owned by another tenant
    ├── RequestTimeout              408  the body did not arrive in time
    ├── Conflict                    409  state does not allow it (finished job, key in use)
    ├── PayloadTooLarge             413  a file or the request is over its limit
    ├── Unprocessable               422  well-formed but contradicting an earlier request
    ├── TooManyRequests             429  too much at once from one tenant (Retry-After)
    └── Unavailable                 503  Redis or S3 cannot take the job now (Retry-After)

The API turns each into `{"error": {"code", "message", "param"}}` in one place.
"""

from __future__ import annotations

from typing import Any, ClassVar


class EditqError(Exception):
    """A refusal with a stable machine-readable `code`."""

    status: ClassVar[int] = 400

    def __init__(self, code: str, message: str, param: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "param": self.param}
        error.update(self.extra)
        return {"error": error}


class InvalidRequest(EditqError):
    """The request is malformed or one of its values is not allowed."""

    status = 400


class UnsupportedMedia(InvalidRequest):
    """An uploaded file is of a kind editq does not accept."""

    status = 415


class Unauthorized(EditqError):
    """No API key, or one that is unknown or revoked."""

    status = 401


class PaymentRequired(EditqError):
    """The job would exceed a budget or its own max_cost_usd."""

    status = 402


class Forbidden(EditqError):
    """The key is valid but may not do this (a tenant key on the admin API)."""

    status = 403


class NotFound(EditqError):
    """Nothing by that id for this tenant."""

    status = 404


class RequestTimeout(EditqError):
    """The request body did not arrive whole within the body deadline."""

    status = 408


class Conflict(EditqError):
    """The current state does not allow the request."""

    status = 409


class PayloadTooLarge(EditqError):
    """A file or the whole request is over its size limit."""

    status = 413


class Unprocessable(EditqError):
    """Well-formed, but contradicts an earlier request with the same Idempotency-Key."""

    status = 422


class TooManyRequests(EditqError):
    """A per-tenant concurrency bound is reached. Retry after `retry_after` seconds."""

    status = 429

    def __init__(self, code: str, message: str, retry_after: int = 1) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class Unavailable(EditqError):
    """A backing service is down; nothing was written. Retry after `retry_after` seconds."""

    status = 503

    def __init__(self, code: str, message: str, retry_after: int = 2) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after
