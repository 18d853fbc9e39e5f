"""The API's answers as Pydantic models: declared on every route so `/openapi.json` describes
what clients get. The job itself (`EditJob`) is shared with webhook bodies in `editq.public`."""

from __future__ import annotations

from typing import Any, Literal, get_args

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from editq.api.credit_schemas import CreditBalance, CreditEstimate
from editq.catalogue import Lane
from editq.public import EditJob, EventType, Public, WebhookEvent


class ErrorDetail(Public):
    """`code` is stable and machine-readable; `param` names the offending field, if any. Some
    refusals add context (the job's `status`, the model's `successor`, …)."""

    model_config = ConfigDict(extra="allow", json_schema_serialization_defaults_required=True)

    code: str
    message: str
    param: str | None


class ErrorEnvelope(Public):
    """Every refusal: `{"error": {"code", "message", "param"}}`."""

    model_config = ConfigDict(
        json_schema_serialization_defaults_required=True,
        json_schema_extra={
            "examples": [
                {"error": {"code": "invalid_n", "message": "n must be between 1 and 10", "param": "n"}}
            ]
        },
    )

    error: ErrorDetail


#: What each refusal means, for the routes that document it.
ERROR_STATUSES = {
    400: "Invalid request",
    401: "Missing, unknown or revoked API key",
    402: "The job does not fit the tenant's budget, its credits or `max_cost_usd`",
    404: "No such resource for this tenant",
    409: "Conflicts with the resource's state or a request in flight",
    413: "Upload or body too large",
    415: "Not an accepted image type",
    422: "`Idempotency-Key` reused with another body",
    429: "Too many uploads in flight for the tenant",
    503: "Redis or S3 unavailable; retry after `Retry-After`",
}
#: The codes each status carries on every route that answers it.
COMMON_CODES = {
    400: "duplicate_header invalid_parameter",
    401: "missing_api_key invalid_api_key",
    422: "idempotency_key_reused",
    429: "too_many_uploads",
    503: "storage_unavailable storage_error",
}
_FILE_CODES = (
    "image_missing image_empty invalid_image image_corrupt image_truncated image_too_many_pixels "
    "unknown_parameter duplicate_parameter invalid_multipart invalid_boundary too_many_parts "
    "invalid_encoding unsupported_content_type"
)
#: The codes of the edit bodies (`POST /v1/edits`, its estimate and its OpenAI twin).
EDIT_CODES = {
    400: f"{_FILE_CODES} too_many_images mask_not_png mask_without_alpha mask_size_mismatch "
    "prompt_missing prompt_too_long invalid_prompt model_not_found model_retired model_unavailable "
    "model_price_unknown invalid_n unsupported_size unsupported_quality unsupported_output_format "
    "unsupported_background transparent_needs_png_or_webp compression_needs_jpeg_or_webp "
    "invalid_output_compression input_fidelity_unsupported invalid_aspect_ratio invalid_strength "
    "invalid_priority invalid_output_size invalid_input_fidelity conflicting_options "
    "invalid_metadata metadata_too_large metadata_too_deep invalid_webhook_events "
    "invalid_webhook_url webhook_url_not_https webhook_url_not_public webhook_host_unresolvable "
    "webhook_endpoint_disabled invalid_cancel_after invalid_idempotency_key invalid_json "
    "json_too_deep image_not_found economy_unsupported economy_unavailable not_in_plan",
    402: "budget_exceeded max_cost_exceeded insufficient_credits",
    409: "idempotency_key_in_use plan_changed",
    413: "image_too_large mask_too_large field_too_large request_too_large",
    415: "unsupported_image_format animated_image",
    503: "hold_lost no_model_available",
}
JOB_CODES = {404: "job_not_found"}
UPLOAD_CODES = {
    400: _FILE_CODES,
    413: "image_too_large file_too_large field_too_large request_too_large",
    415: "unsupported_image_format animated_image",
}


RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
}


def _described(status: int, codes: dict[int, str]) -> str:
    named = f"{COMMON_CODES.get(status, '')} {codes.get(status, '')}".split()
    listed = ", ".join(f"`{code}`" for code in dict.fromkeys(named))
    return f"{ERROR_STATUSES[status]}: {listed}" if listed else ERROR_STATUSES[status]


def errors(
    *statuses: int, authenticated: bool = True, codes: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the error envelope under 400, 401 (when `authenticated`), 503
    and each of `statuses`, each described with the codes it carries (the common ones and
    `codes`), and under `4XX` for any other refusal (so the schema shows no FastAPI 422 body: the
    API answers invalid parameters with 400 and the envelope)."""
    common = {400, 401, 503} if authenticated else {400, 503}
    documented: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorEnvelope, "description": _described(status, codes or {})}
        for status in sorted({*common, *statuses})
    }
    for status in (429, 503):
        if status in documented:
            documented[status]["headers"] = RETRY_AFTER
    documented["4XX"] = {
        "model": ErrorEnvelope,
        "description": "Any other refusal (`body_timeout` 408, `not_found`, `method_not_allowed`, …)",
    }
    return documented


class EditJobList(Public):
    object: Literal["list"] = "list"
    data: list[EditJob]
    next_cursor: str | None
    has_more: bool


class DeliveryAttempt(Public):
    """One attempt: `status` is the receiver's HTTP code, or `timeout`, `error`, `refused`,
    `skipped`; `response` (an excerpt), `error`, `duration_ms` and `next_attempt_at` (ms) as
    they apply."""

    model_config = ConfigDict(extra="allow", json_schema_serialization_defaults_required=True)

    n: int
    at: int
    status: int | str


class Delivery(Public):
    id: str
    event: str
    url: str
    status: str
    attempt_count: int
    next_attempt_at: int | None
    attempts: list[DeliveryAttempt]


class DeliveryList(Public):
    object: Literal["list"] = "list"
    data: list[Delivery]


class Redelivery(Public):
    id: str
    status: Literal["pending"] = "pending"
    event: str
    url: str


class SigningSecret(Public):
    secret: str
    created_at: int
    expires_at: int | None


class WebhookSecrets(Public):
    """The current secret first; rotated ones sign too until `expires_at` (unix seconds)."""

    object: Literal["webhook_secret"] = "webhook_secret"
    secret: str | None
    secrets: list[SigningSecret]


class DisabledEndpoints(Public):
    object: Literal["list"] = "list"
    disabled: list[str]


class EnabledEndpoint(Public):
    url: str
    enabled: bool


class Budget(Public):
    """One budget period; null limits and remainders where the tenant has no limit."""

    limit_usd: str | None
    spent_usd: str
    reserved_usd: str
    remaining_usd: str | None


class UsageGroup(Public):
    spent_usd: str
    spent_micros: int
    jobs_settled: int
    jobs_released: int
    jobs_reused: int


class UsageByDay(UsageGroup):
    day: str


class UsageByModel(UsageGroup):
    model: str


class Usage(Public):
    model_config = ConfigDict(populate_by_name=True, json_schema_serialization_defaults_required=True)

    object: Literal["usage"] = "usage"
    tenant: str
    from_: str = Field(alias="from")
    to: str
    group_by: Literal["day", "model"]
    budgets: dict[str, Budget]
    credits: CreditBalance
    spent_usd: str
    groups: list[UsageByDay] | list[UsageByModel]


class LedgerEntry(Public):
    id: str
    job: str
    kind: str
    amount_micros: int
    amount_usd: str
    released_micros: int
    model: str
    usage: str | None = Field(description="the provider's usage as JSON text, if any")
    day: str | None
    at: int
    note: str | None
    credits: int | None = Field(
        description="on a credit plan: credits reserved, charged, or topped up (kind `topup`)"
    )
    credits_released: int | None = Field(description="on a credit plan: the job's credit hold given back")
    lane: Lane = Field(description="the lane whose prices the amount is at (economy: batch prices)")


class Ledger(Public):
    object: Literal["list"] = "list"
    data: list[LedgerEntry]
    has_more: bool


class ArbitrarySizes(Public):
    multiple_of: int
    min_edge: int
    max_edge: int
    max_pixels: int
    min_ratio: str
    max_ratio: str


class CatalogueModel(Public):
    """A model as OpenAI lists it (`id`, `object`, `created`: its release in unix seconds, 0 if
    unknown, `owned_by`), with editq's catalogue: prices are USD per 1M tokens as decimal strings."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    description: str
    sizes: list[str]
    arbitrary_sizes: ArbitrarySizes | None
    qualities: list[str]
    output_formats: list[str]
    backgrounds: list[str]
    input_fidelity: bool
    max_images: int
    max_n: int
    prompt_max_chars: int
    prices_usd_per_1m_tokens: dict[str, str | None]
    prices_confirmed: bool
    prices_basis: str
    input_tokens_confirmed: bool
    retires_on: str | None
    successor: str | None
    snapshots: list[str]
    retired: bool
    served: bool


class ModelList(Public):
    """OpenAI's model list, and which model a job without `model` runs on, and why."""

    object: Literal["list"] = "list"
    default: str | None
    default_note: str | None
    configured_default: str | None
    served_checked_at: str | None
    aliases: dict[str, str]
    data: list[CatalogueModel]


class Image(Public):
    """A stored upload; pass `id` as `image_ids` or `mask_id`."""

    object: Literal["image"] = "image"
    id: str
    sha256: str
    content_type: str
    width: int
    height: int
    bytes: int
    has_alpha: bool


class BatchItem(Public):
    """One item's answer: `job` when it was accepted (`status` 202, or 200 when reused), `error`
    otherwise (only one of the two is sent)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    index: int
    status: int
    job: EditJob | None = None
    error: ErrorDetail | None = None


class BatchAnswer(Public):
    object: Literal["batch"] = "batch"
    accepted: int
    refused: int
    items: list[BatchItem]


class Estimate(Public):
    """What a submit would run and may cost; `estimated_usd` is null for a model without
    confirmed prices, `budget_remaining_usd` null per period without a limit."""

    object: Literal["edit.estimate"] = "edit.estimate"
    model: str
    model_called: str
    model_note: str | None
    provider_size: str
    quality: str
    n: int
    #: The lane the job would run in; `estimated_usd` is at that lane's prices.
    lane: Lane
    estimated_usd: str | None
    budget_remaining_usd: dict[str, str | None]
    credits: CreditEstimate | None


class Health(Public):
    status: Literal["ok"] = "ok"


class Readiness(Public):
    """`ok`, `degraded` (the reason says why) or `unavailable` (answered with 503). `checks` has
    `redis` and `s3` (`ok` or `down: …`) and, when Redis answers, `provider` (the limiter),
    `workers` (live count) and `models` (the default chain and retirements)."""

    status: Literal["ok", "degraded", "unavailable"]
    reason: str | None
    checks: dict[str, Any]


#: How editq treats a receiver's answer.
RECEIVER_ANSWERS: dict[int | str, dict[str, Any]] = {
    410: {"description": "Gone: editq disables the URL for the tenant"},
    "default": {"description": "Anything else, or no answer: retried on the schedule"},
}


def document_webhooks(app: FastAPI) -> None:
    """Every event in `/openapi.json` under `webhooks`: what editq POSTs to a job's `webhook_url`."""
    for event in get_args(EventType):

        def receive(body: WebhookEvent) -> None:
            """Signed per Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`
            (`v1,` HMAC-SHA256 of `id.timestamp.body` with the tenant's `whsec_` secret). Answer
            2xx to acknowledge; 410 disables the URL; anything else is retried."""

        app.webhooks.post(
            event,
            summary=f"`{event}`",
            operation_id=f"webhook_{event}",
            response_description="Acknowledged (any 2xx)",
            responses=RECEIVER_ANSWERS,
        )(receive)


class OpenAIInputTokens(BaseModel):
    text_tokens: int
    image_tokens: int


class OpenAIOutputTokens(BaseModel):
    image_tokens: int
    text_tokens: int


class ImageGenUsage(BaseModel):
    """OpenAI's `usage` of the call, as the provider reported it."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: OpenAIInputTokens
    output_tokens_details: OpenAIOutputTokens | None = None


class OpenAIImage(BaseModel):
    b64_json: str


class ImagesResponse(BaseModel):
    """OpenAI's answer to `POST /v1/images/edits`: the outputs as base64 and what was made
    (`size`, `quality`, `background` as the provider resolved them, `auto` never). Fields editq
    cannot tell are left out."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "created": 1795694400,
                    "data": [{"b64_json": "iVBORw0KGgo..."}],
                    "background": "opaque",
                    "output_format": "png",
                    "size": "1536x1024",
                    "quality": "medium",
                    "usage": {
                        "input_tokens": 361,
                        "output_tokens": 1568,
                        "total_tokens": 1929,
                        "input_tokens_details": {"text_tokens": 38, "image_tokens": 323},
                    },
                }
            ]
        }
    )

    created: int
    data: list[OpenAIImage]
    background: str | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    size: str | None = None
    quality: str | None = None
    usage: ImageGenUsage | None = None


class OpenAIErrorDetail(BaseModel):
    """`code` is editq's code (OpenAI's where it has one: `insufficient_quota`,
    `rate_limit_exceeded`, then `editq_code` keeps editq's); failed jobs add their details."""

    model_config = ConfigDict(extra="allow")

    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorResponse(BaseModel):
    """OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`."""

    error: OpenAIErrorDetail
