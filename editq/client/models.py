"""The API's answers as the client reads them.

They mirror the server's models (`editq.public.EditJob` and `api/schemas.py`, which the client cannot
import: they belong to the server's install) as tolerant readers: fields the client does not know
are kept (`model_extra`), fields an older server does not send default to None, money is `Decimal`,
times are `datetime`. `raw` is the JSON object exactly as the API sent it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    model_validator,
)

from editq.client.errors import EditqError

#: The states a job does not leave.
TERMINAL = frozenset({"succeeded", "failed", "canceled", "expired"})


class Answer(BaseModel):
    """A JSON object from the API; unknown fields are kept."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        answer = handler(data)
        if isinstance(data, dict) and isinstance(answer, Answer):
            answer._raw = data
        return answer

    @property
    def raw(self) -> dict[str, Any]:
        """The object as the API sent it."""
        return self._raw


class Output(Answer):
    url: str
    content_type: str
    width: int | None = None
    height: int | None = None
    bytes: int | None = None


class Cost(Answer):
    estimated_usd: Decimal | None = None
    reserved_usd: Decimal | None = None
    actual_usd: Decimal | None = None
    usage: dict[str, Any] | None = None


class JobError(Answer):
    """Why a job (or its last attempt) failed; providers' errors add details."""

    code: str
    message: str = ""


class JobCredits(Answer):
    """A job on a credit plan: the most it may cost (`estimated`, held until it ends) and what it
    was charged (`charged`, once it ended)."""

    plan: str
    estimated: int
    reserved: int = 0
    charged: int | None = None


class CreditBalance(Answer):
    """The tenant's credits in `GET /v1/usage`: top-ups less charges (`balance`), what unfinished
    jobs hold (`reserved`) and what a new job may reserve (`available`); `plan` null off any plan."""

    plan: str | None = None
    balance: int = 0
    reserved: int = 0
    available: int = 0


class CreditEstimate(Answer):
    """On a credit plan: the credits a submit would reserve, and what the balance has available."""

    plan: str
    estimated: int
    available: int


class EditJob(Answer):
    """One edit job (`GET /v1/edits/{id}`)."""

    id: str
    object: str = "edit"
    status: str
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    model: str | None = None
    model_requested: str | None = None
    model_called: str | None = None
    model_note: str | None = None
    prompt: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    provider_request: dict[str, Any] = Field(default_factory=dict)
    priority: str | None = None
    #: `interactive`, or `economy` (through the provider's Batch API, at the batch price).
    lane: str | None = None
    #: The provider's batch that runs or ran the job (economy lane), else None.
    provider_batch_id: str | None = None
    #: The provider account that ran the job's call (None before its admission).
    account: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    webhook: dict[str, Any] | None = None
    sources: list[dict[str, Any]] = Field(default_factory=list)
    mask: dict[str, Any] | None = None
    cost: Cost = Field(default_factory=Cost)
    credits: JobCredits | None = None
    outputs: list[Output] = Field(default_factory=list)
    error: JobError | None = None
    last_error: JobError | None = None
    queue_position: int | None = None
    attempts: int | None = None
    deadline: datetime | None = None
    reused_from: str | None = None

    @property
    def terminal(self) -> bool:
        """The job has ended (succeeded, failed, canceled or expired)."""
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


class EditJobList(Answer):
    """One page of `GET /v1/edits`, newest first."""

    object: str = "list"
    data: list[EditJob]
    next_cursor: str | None = None
    has_more: bool = False


class Budget(Answer):
    """One budget period; None where the tenant has no limit."""

    limit_usd: Decimal | None = None
    spent_usd: Decimal | None = None
    reserved_usd: Decimal | None = None
    remaining_usd: Decimal | None = None


class UsageGroup(Answer):
    """Spend of one day (`day`) or one model (`model`)."""

    day: str | None = None
    model: str | None = None
    spent_usd: Decimal
    spent_micros: int | None = None
    jobs_settled: int = 0
    jobs_released: int = 0
    jobs_reused: int = 0


class Usage(Answer):
    """`GET /v1/usage`: spend, reservations and what remains of each budget."""

    object: str = "usage"
    tenant: str | None = None
    from_: str = Field(alias="from")
    to: str
    group_by: str
    budgets: dict[str, Budget] = Field(default_factory=dict)
    spent_usd: Decimal
    groups: list[UsageGroup] = Field(default_factory=list)
    credits: CreditBalance | None = None


class Estimate(Answer):
    """`POST /v1/edits/estimate`: what a submit would run and may reserve."""

    object: str = "edit.estimate"
    model: str
    model_called: str | None = None
    model_note: str | None = None
    #: The lane the job would run in; `estimated_usd` is at that lane's prices.
    lane: str | None = None
    provider_size: str | None = None
    quality: str | None = None
    n: int | None = None
    estimated_usd: Decimal | None = None
    budget_remaining_usd: dict[str, Decimal | None] = Field(default_factory=dict)
    credits: CreditEstimate | None = None


class Image(Answer):
    """A stored upload (`POST /v1/uploads`); submit it again by passing this object as an image."""

    object: str = "image"
    id: str
    sha256: str | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    has_alpha: bool | None = None


class BatchItem(Answer):
    """One item of a batch answer: `job` when accepted, `error` when refused."""

    index: int
    status: int
    job: EditJob | None = None
    error: dict[str, Any] | None = None


class BatchAnswer(Answer):
    """`POST /v1/edits/batch`: each item answered on its own."""

    object: str = "batch"
    accepted: int = 0
    refused: int = 0
    items: list[BatchItem]


class WebhookEvent(Answer):
    """A webhook body: the event, when it happened, and the job at that moment."""

    type: str
    timestamp: datetime | str
    data: EditJob


@dataclass(frozen=True)
class BatchResult:
    """What became of one item of `iter_batch`: `index` is its place in the items given; `job`
    is the job (finished, or as it stood when the wait ran out), `error` why it was refused."""

    index: int
    job: EditJob | None = None
    error: EditqError | None = None

    @property
    def succeeded(self) -> bool:
        return self.job is not None and self.job.succeeded
