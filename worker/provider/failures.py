"""Provider errors. The class decides what happens to the job.

ProviderError                 message, status, code, request_id, retry_after
├── Retryable                 the job is tried again later (bounded)
│   ├── ProviderTimeout       no answer in time
│   ├── ProviderUnreachable   connection refused, reset, DNS
│   ├── ProviderServerError   5xx
│   └── RateLimited           429 rate_limit_exceeded: the limiter backs off
└── Permanent                 the job fails now
    ├── ModerationBlocked     moderation_blocked: the safety system refused it
    ├── QuotaExceeded         429 insufficient_quota: the account is paused
    ├── AuthenticationFailed  401/403: the account is paused
    ├── ModelUnavailable      404 model_not_found: the account does not serve the model
    ├── ProviderRejected      any other 4xx
    └── BadResponse           a 2xx editq cannot use
"""

from __future__ import annotations

from typing import Any

from editq.ratelimits import RateHeaders
from editq.telemetry import ProviderOutcome


class ProviderError(Exception):
    """A failed call, with what the provider said."""

    code = "provider_error"
    #: The `outcome` label of `editq_provider_calls_total` for this failure.
    outcome = ProviderOutcome.REJECTED

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider_code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.provider_code = provider_code
        self.request_id = request_id
        self.retry_after = retry_after
        self.details = details or {}
        #: The answer's rate-limit headers, for the limiter.
        self.rate: RateHeaders | None = None

    def to_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.status is not None:
            error["provider_status"] = self.status
        if self.provider_code:
            error["provider_code"] = self.provider_code
        if self.request_id:
            error["provider_request_id"] = self.request_id
        error.update(self.details)
        return error


class Retryable(ProviderError):
    """Worth trying again after a delay."""


class ProviderTimeout(Retryable):
    """The provider did not answer in time."""

    code = "provider_timeout"
    outcome = ProviderOutcome.TIMEOUT


class ProviderUnreachable(Retryable):
    """The connection failed."""

    code = "provider_unreachable"
    outcome = ProviderOutcome.UNREACHABLE


class ProviderServerError(Retryable):
    """The provider failed (5xx)."""

    code = "provider_server_error"
    outcome = ProviderOutcome.SERVER_ERROR


class RateLimited(Retryable):
    """429 rate_limit_exceeded."""

    code = "rate_limited"
    outcome = ProviderOutcome.RATE_LIMITED


class Permanent(ProviderError):
    """Trying again would not help."""


class ModerationBlocked(Permanent):
    """The provider's safety system refused the request or its output."""

    code = "moderation_blocked"
    outcome = ProviderOutcome.MODERATION


class QuotaExceeded(Permanent):
    """429 insufficient_quota: the account is out of credit; admission pauses."""

    code = "insufficient_quota"
    outcome = ProviderOutcome.QUOTA


class AuthenticationFailed(Permanent):
    """The API key is wrong or lacks access; admission pauses."""

    code = "provider_auth_failed"
    outcome = ProviderOutcome.AUTH


class ModelUnavailable(Permanent):
    """404 model_not_found: the model is not (or no longer) served to this account."""

    code = "model_unavailable"
    outcome = ProviderOutcome.REJECTED


class ProviderRejected(Permanent):
    """Any other 4xx."""

    code = "provider_rejected"
    outcome = ProviderOutcome.REJECTED


class BadResponse(Permanent):
    """A 2xx without usable images."""

    code = "provider_bad_response"
    outcome = ProviderOutcome.BAD_RESPONSE
