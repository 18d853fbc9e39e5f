"""The API's answers as Pydantic models: declared on every route so `/openapi.json` describes
what clients get. The job itself (`EditJob`) is shared with webhook bodies in `editq.public`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from editq.public import EditJob


class ErrorDetail(BaseModel):
    """`code` is stable and machine-readable; `param` names the offending field, if any. Some
    refusals add context (the job's `status`, the model's `successor`, …)."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    param: str | None


class ErrorEnvelope(BaseModel):
    """Every refusal: `{"error": {"code", "message", "param"}}`."""

    error: ErrorDetail


#: What each refusal means, for the routes that document it.
ERROR_STATUSES = {
    400: "Invalid request (`invalid_parameter`, `unknown_parameter`, …)",
    401: "Missing, unknown or revoked API key",
    402: "The job does not fit the tenant's budget or `max_cost_usd`",
    404: "No such resource for this tenant",
    409: "Conflicts with the resource's state or a request in flight",
    413: "Upload or body too large",
    415: "Not an accepted image type",
    422: "`Idempotency-Key` reused with another body",
    429: "Too many uploads in flight for the tenant",
    503: "Redis or S3 unavailable; retry after `Retry-After`",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the error envelope under 400, 401, 503 and each of `statuses`,
    and under `4XX` for any other refusal (so the schema shows no FastAPI 422 body: the API
    answers invalid parameters with 400 and the envelope)."""
    documented: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorEnvelope, "description": ERROR_STATUSES[status]}
        for status in sorted({400, 401, 503, *statuses})
    }
    documented["4XX"] = {"model": ErrorEnvelope, "description": "Any other refusal"}
    return documented


class EditJobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EditJob]
    next_cursor: str | None
    has_more: bool


class DeliveryAttempt(BaseModel):
    """One attempt: `status` is the receiver's HTTP code, or `timeout`, `error`, `refused`,
    `skipped`; `response` (an excerpt), `error`, `duration_ms` and `next_attempt_at` (ms) as
    they apply."""

    model_config = ConfigDict(extra="allow")

    n: int
    at: int
    status: int | str


class Delivery(BaseModel):
    id: str
    event: str
    url: str
    status: str
    attempt_count: int
    next_attempt_at: int | None
    attempts: list[DeliveryAttempt]


class DeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Delivery]


class Redelivery(BaseModel):
    id: str
    status: Literal["pending"] = "pending"
    event: str
    url: str


class SigningSecret(BaseModel):
    secret: str
    created_at: int
    expires_at: int | None


class WebhookSecrets(BaseModel):
    """The current secret first; rotated ones sign too until `expires_at` (unix seconds)."""

    object: Literal["webhook_secret"] = "webhook_secret"
    secret: str | None
    secrets: list[SigningSecret]


class DisabledEndpoints(BaseModel):
    object: Literal["list"] = "list"
    disabled: list[str]


class EnabledEndpoint(BaseModel):
    url: str
    enabled: bool


class Budget(BaseModel):
    """One budget period; null limits and remainders where the tenant has no limit."""

    limit_usd: str | None
    spent_usd: str
    reserved_usd: str
    remaining_usd: str | None


class UsageGroup(BaseModel):
    spent_usd: str
    spent_micros: int
    jobs_settled: int
    jobs_released: int
    jobs_reused: int


class UsageByDay(UsageGroup):
    day: str


class UsageByModel(UsageGroup):
    model: str


class Usage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    object: Literal["usage"] = "usage"
    tenant: str
    from_: str = Field(alias="from")
    to: str
    group_by: Literal["day", "model"]
    budgets: dict[str, Budget]
    spent_usd: str
    groups: list[UsageByDay] | list[UsageByModel]


class LedgerEntry(BaseModel):
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


class Ledger(BaseModel):
    object: Literal["list"] = "list"
    data: list[LedgerEntry]
    has_more: bool


class ArbitrarySizes(BaseModel):
    multiple_of: int
    min_edge: int
    max_edge: int
    max_pixels: int
    min_ratio: str
    max_ratio: str


class CatalogueModel(BaseModel):
    """A catalogued model; prices are USD per 1M tokens as decimal strings."""

    id: str
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


class ModelList(BaseModel):
    """The catalogue, and which model a job without `model` runs on, and why."""

    object: Literal["list"] = "list"
    default: str | None
    default_note: str | None
    configured_default: str | None
    served_checked_at: str | None
    aliases: dict[str, str]
    data: list[CatalogueModel]


class Image(BaseModel):
    """A stored upload; pass `id` as `image_ids` or `mask_id`."""

    object: Literal["image"] = "image"
    id: str
    sha256: str
    content_type: str
    width: int
    height: int
    bytes: int
    has_alpha: bool


class BatchItem(BaseModel):
    """One item's answer: `job` when it was accepted (`status` 202, or 200 when reused), `error`
    otherwise."""

    index: int
    status: int
    job: EditJob | None = None
    error: ErrorDetail | None = None


class BatchAnswer(BaseModel):
    object: Literal["batch"] = "batch"
    accepted: int
    refused: int
    items: list[BatchItem]


class Estimate(BaseModel):
    """What a submit would run and may cost; `estimated_usd` is null for a model without
    confirmed prices, `budget_remaining_usd` null per period without a limit."""

    object: Literal["edit.estimate"] = "edit.estimate"
    model: str
    model_called: str
    model_note: str | None
    provider_size: str
    quality: str
    n: int
    estimated_usd: str | None
    budget_remaining_usd: dict[str, str | None]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """`ok`, `degraded` (the reason says why) or `unavailable` (answered with 503). `checks` has
    `redis` and `s3` (`ok` or `down: …`) and, when Redis answers, `provider` (the limiter),
    `workers` (live count) and `models` (the default chain and retirements)."""

    status: Literal["ok", "degraded", "unavailable"]
    reason: str | None
    checks: dict[str, Any]
