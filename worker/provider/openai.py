"""OpenAI `POST /v1/images/edits` (multipart, as the spec extract gives it) over httpx, and
the same body at an Azure OpenAI deployment URL. No retries inside: the worker decides."""

from __future__ import annotations

import base64
import binascii
import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from editq.accounts import Account
from editq.options import EditPlan
from editq.ratelimits import RateHeaders
from editq.settings import Settings
from editq.worker.provider.failures import (
    AuthenticationFailed,
    BadResponse,
    ModelUnavailable,
    ModerationBlocked,
    ProviderError,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnreachable,
    QuotaExceeded,
    RateLimited,
)

#: Longest Retry-After editq honours inside one job's retry; longer waits go to the schedule.
MAX_RETRY_AFTER_S = 3600.0


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class EditCall:
    """One provider call for one job."""

    plan: EditPlan
    images: list[Upload]
    mask: Upload | None = None
    user: str | None = None


@dataclass(frozen=True)
class EditResult:
    images: list[bytes]
    usage: dict[str, Any] | None
    echo: dict[str, Any]
    rate: RateHeaders
    request_id: str | None
    headers: dict[str, str] = field(default_factory=dict)


class Provider(Protocol):
    name: str

    def edit(self, call: EditCall) -> EditResult: ...

    def models(self) -> list[str] | None:
        """The model ids the account can call, or None when the provider cannot list them."""
        ...


def form_fields(plan: EditPlan, user: str | None = None) -> dict[str, str]:
    """The text fields of the multipart body. `model` is always sent."""
    fields = {
        "model": plan.api_model,
        "prompt": plan.prompt,
        "n": str(plan.n),
        "size": plan.size,
        "quality": plan.quality,
        "output_format": plan.output_format,
        "background": plan.background,
    }
    if plan.output_compression is not None:
        fields["output_compression"] = str(plan.output_compression)
    if plan.input_fidelity is not None:
        fields["input_fidelity"] = plan.input_fidelity
    if user:
        fields["user"] = user
    return fields


def form_files(call: EditCall) -> list[tuple[str, tuple[str, bytes, str]]]:
    """One image goes as `image`; several as repeated `image[]` (the spec's curl example)."""
    name = "image" if len(call.images) == 1 else "image[]"
    files = [(name, (u.filename, u.data, u.content_type)) for u in call.images]
    if call.mask is not None:
        files.append(("mask", (call.mask.filename, call.mask.data, call.mask.content_type)))
    return files


def _int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def rate_headers(headers: Mapping[str, str]) -> RateHeaders:
    return RateHeaders(
        limit_requests=_int(headers, "x-ratelimit-limit-requests"),
        remaining_requests=_int(headers, "x-ratelimit-remaining-requests"),
        limit_images=_int(headers, "x-ratelimit-limit-images"),
        remaining_images=_int(headers, "x-ratelimit-remaining-images"),
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms`, then `retry-after` in seconds or as an HTTP date."""
    if "retry-after-ms" in headers:
        try:
            return min(MAX_RETRY_AFTER_S, max(0.0, float(headers["retry-after-ms"]) / 1000))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return min(MAX_RETRY_AFTER_S, max(0.0, parsed.timestamp() - time.time()))


def classify(response: httpx.Response) -> ProviderError:
    """The error for a non-2xx answer, from its status and its `error.code`."""
    status = response.status_code
    error = _error_object(response)
    code = error.get("code") or error.get("type")
    message = str(error.get("message") or response.text[:500] or f"HTTP {status}")
    kwargs: dict[str, Any] = {
        "status": status,
        "provider_code": code,
        "request_id": response.headers.get("x-request-id"),
        "retry_after": retry_after(response.headers),
    }
    kind = error.get("type")
    blocked = _moderation_block(error, code, kind, message, kwargs)
    if blocked is not None:
        return blocked
    return _status_error(status, code, kind, message, kwargs)


def _error_object(response: httpx.Response) -> dict[str, Any]:
    """The body's `error` object, or `{}` when the body has none."""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
    except ValueError:
        error = None
    return error if isinstance(error, dict) else {}


def _moderation_block(
    error: dict[str, Any], code: Any, kind: Any, message: str, kwargs: dict[str, Any]
) -> ProviderError | None:
    if code == "moderation_blocked" or (kind == "image_generation_user_error" and code is None):
        details = {"moderation": error["moderation_details"]} if error.get("moderation_details") else {}
        return ModerationBlocked(
            f"the provider's safety system refused this edit: {message}", details=details, **kwargs
        )
    if code == "contentFilter":
        return ModerationBlocked(f"the provider's content filter refused this edit: {message}", **kwargs)
    return None


def _status_error(status: int, code: Any, kind: Any, message: str, kwargs: dict[str, Any]) -> ProviderError:
    if status == 429:
        if code == "insufficient_quota" or kind == "insufficient_quota":
            return QuotaExceeded(f"the provider account is out of quota: {message}", **kwargs)
        return RateLimited(message, **kwargs)
    if status == 404 and code in ("model_not_found", "DeploymentNotFound"):
        return ModelUnavailable(f"the provider does not serve this model: {message}", **kwargs)
    if status in (401, 403):
        return AuthenticationFailed(f"the provider refused the API key: {message}", **kwargs)
    if status in (408, 409) or status >= 500:
        return ProviderServerError(f"provider error {status}: {message}", **kwargs)
    return ProviderRejected(f"the provider rejected the request ({status}): {message}", **kwargs)


def list_models(client: httpx.Client, url: str, headers: dict[str, str]) -> list[str]:
    """The ids of an OpenAI-style `{"object": "list", "data": [{"id": ...}]}` listing."""
    try:
        response = client.get(url, headers=headers, timeout=httpx.Timeout(15.0))
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(f"no answer from the provider's model list ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise ProviderUnreachable(f"cannot reach the provider's model list: {exc}") from exc
    if response.status_code >= 300:
        raise classify(response)
    try:
        data = response.json().get("data")
    except (ValueError, AttributeError):
        raise BadResponse("the model list is not a JSON object", status=response.status_code) from None
    if not isinstance(data, list):
        raise BadResponse("the model list has no data array", status=response.status_code)
    return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]


def _parse(response: httpx.Response, expected: int) -> EditResult:
    try:
        body = response.json()
    except ValueError:
        raise BadResponse(
            "the provider answered with something other than JSON", status=response.status_code
        ) from None
    return parse_images(
        body,
        expected,
        status=response.status_code,
        request_id=response.headers.get("x-request-id"),
        headers=response.headers,
    )


def parse_images(
    body: Any,
    expected: int,
    *,
    status: int,
    request_id: str | None,
    headers: Mapping[str, str] | None = None,
) -> EditResult:
    """The images and usage of an `ImagesResponse` body (a call's answer, or a batch line's)."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not data:
        raise BadResponse("the provider answered without images", status=status)
    images = []
    for item in data:
        encoded = item.get("b64_json") if isinstance(item, dict) else None
        if not isinstance(encoded, str):
            raise BadResponse("an image in the answer has no b64_json", status=status)
        try:
            images.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise BadResponse("an image in the answer is not valid base64", status=status) from None
    if len(images) > expected:
        images = images[:expected]
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
    echo = {k: body.get(k) for k in ("size", "quality", "output_format", "background") if body.get(k)}
    headers = headers or {}
    return EditResult(
        images=images,
        usage=usage,
        echo=echo,
        rate=rate_headers(headers),
        request_id=request_id,
        headers={k: v for k, v in headers.items() if k.startswith("x-ratelimit")},
    )


def send(client: httpx.Client, url: str, headers: dict[str, str], call: EditCall) -> EditResult:
    """One attempt. Raises a ProviderError subclass for anything but a usable 2xx."""
    try:
        response = client.post(
            url, headers=headers, data=form_fields(call.plan, call.user), files=form_files(call)
        )
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(f"no answer from the provider in time ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise ProviderUnreachable(f"cannot reach the provider: {exc}") from exc
    if response.status_code >= 300:
        error = classify(response)
        error.rate = rate_headers(response.headers)
        raise error
    return _parse(response, call.plan.n)


class OpenAIProvider:
    """`{OPENAI_BASE_URL}/images/edits` with `Authorization: Bearer`."""

    name = "openai"

    def __init__(self, client: httpx.Client, base_url: str, api_key: str) -> None:
        self.client = client
        self.url = base_url.rstrip("/") + "/images/edits"
        self.models_url = base_url.rstrip("/") + "/models"
        self.headers = {"Authorization": f"Bearer {api_key}"}

    def edit(self, call: EditCall) -> EditResult:
        return send(self.client, self.url, self.headers, call)

    def models(self) -> list[str] | None:
        """`GET {base}/models`: every model id the account can call."""
        return list_models(self.client, self.models_url, self.headers)


class AzureProvider:
    """`{endpoint}/openai/deployments/{deployment}/images/edits?api-version=...` with `api-key`."""

    name = "azure"

    def __init__(
        self, client: httpx.Client, endpoint: str, api_key: str, api_version: str, deployments: dict[str, str]
    ) -> None:
        self.client = client
        self.endpoint = endpoint.rstrip("/")
        self.api_version = api_version
        self.deployments = deployments
        self.headers = {"api-key": api_key}

    def url_for(self, model: str) -> str:
        deployment = self.deployments.get(model, model)
        return f"{self.endpoint}/openai/deployments/{deployment}/images/edits?api-version={self.api_version}"

    def edit(self, call: EditCall) -> EditResult:
        return send(self.client, self.url_for(call.plan.api_model), self.headers, call)

    def models(self) -> list[str] | None:
        """The configured deployments are what this account serves (None: not configured)."""
        return sorted(self.deployments) or None


def http_client(settings: Settings, pool: int) -> httpx.Client:
    """One client per worker process: explicit timeouts, a pool as large as the threads."""
    return httpx.Client(
        timeout=httpx.Timeout(
            connect=settings.provider_connect_timeout,
            read=settings.provider_read_timeout,
            write=60.0,
            pool=30.0,
        ),
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        follow_redirects=False,
    )


def for_account(account: Account, client: httpx.Client) -> Provider:
    """The adapter calling one provider account (all share the worker's httpx client)."""
    if account.api_key is None:
        if account.kind == "azure":
            raise ValueError("EDITQ_PROVIDER=azure needs AZURE_OPENAI_API_KEY")
        raise ValueError("OPENAI_API_KEY is not set (make run starts the simulator and sets it)")
    if account.kind == "azure":
        return AzureProvider(
            client, account.base_url, account.api_key, account.api_version, dict(account.deployments)
        )
    return OpenAIProvider(client, account.base_url, account.api_key)


def build(settings: Settings, client: httpx.Client) -> Provider:
    """The adapter of the first account."""
    return for_account(settings.accounts[0], client)
