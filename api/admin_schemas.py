"""The admin API's bodies and answers (`/v1/admin/*`).

Request bodies are strict: unknown fields, wrong types and out-of-range values are refused, each
field with its own code (`FIELD_CODES`). Amounts are USD as plain decimals (a string such as
`"12.50"`, or a JSON number) with at most 6 decimal places.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

from editq.api.credit_schemas import CreditBalance
from editq.api.schemas import Budget
from editq.catalogue import Catalogue
from editq.cost import usd
from editq.credits import WILDCARD, Plan
from editq.errors import InvalidRequest
from editq.public import Public
from editq.storage.tenants import MAX_BUDGET_MICROS, MAX_RUNNING, MAX_WEIGHT, NAME

_DECIMAL = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?", re.ASCII)
#: Most a credit may be worth ($1,000,000).
MAX_CREDIT_MICROS = 10**12
#: Largest markup: 100 (+10,000%), in parts per million.
MAX_MARKUP_PPM = 100 * 10**6
#: Most credits one output image may cost on a price list.
MAX_PER_IMAGE = 10**9
#: Largest single top-up, in credits.
MAX_TOP_UP = 10**12


def amount_micros(value: Any, ceiling: int = MAX_BUDGET_MICROS) -> Any:
    """A USD amount as integer micro-dollars: a plain decimal string or a finite JSON number,
    0 to `ceiling`, at most 6 decimal places. Anything else is handed on for the type check
    to refuse."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return value
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise ValueError("an amount is a plain decimal such as 12.50 (at most 6 decimal places)")
    try:
        amount = Decimal(value if isinstance(value, str) else repr(value))
    except InvalidOperation:
        raise ValueError("an amount is a plain decimal such as 12.50") from None
    if not amount.is_finite() or amount < 0 or amount * 1_000_000 > ceiling:
        raise ValueError(f"an amount is 0 to {usd(ceiling)}")
    micros = amount * 1_000_000
    if micros != micros.to_integral_value():
        raise ValueError("an amount has at most 6 decimal places")
    return int(micros)


def _amount_schema(description: str, nullable: bool) -> WithJsonSchema:
    kinds: list[dict[str, Any]] = [{"type": "string", "pattern": _DECIMAL.pattern}, {"type": "number"}]
    return WithJsonSchema(
        {"anyOf": [*kinds, *([{"type": "null"}] if nullable else [])], "description": description}
    )


#: A budget in USD, read into micro-dollars; null clears it.
BudgetUsd = Annotated[
    int | None,
    BeforeValidator(amount_micros),
    _amount_schema("USD, at most 6 decimal places, 0 to 1e9; null for no limit", nullable=True),
]


def credit_micros(value: Any) -> Any:
    """What a credit is worth: an amount of at least $0.000001."""
    micros = amount_micros(value, MAX_CREDIT_MICROS)
    if micros == 0:
        raise ValueError("a credit is worth at least 0.000001")
    return micros


#: What one credit is worth, in USD, read into micro-dollars.
CreditUsd = Annotated[
    int,
    BeforeValidator(credit_micros),
    _amount_schema("USD per credit, at most 6 decimal places, 0.000001 to 1000000", nullable=False),
]
#: A markup on the provider's cost (0.25 is +25%), read into parts per million.
Markup = Annotated[
    int | None,
    BeforeValidator(lambda v: amount_micros(v, MAX_MARKUP_PPM)),
    _amount_schema(
        "a fraction of the provider's cost added on top, 0 to 100, at most 6 decimals", nullable=True
    ),
]
TenantName = Annotated[str, StringConstraints(pattern=f"^{NAME.pattern}$")]
Weight = Annotated[int, Field(ge=1, le=MAX_WEIGHT, description="share in fair admission")]
MaxRunning = Annotated[
    int | None, Field(ge=0, le=MAX_RUNNING, description="cap on running jobs; 0 or null for none")
]
PriceModel = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z0-9][a-z0-9._-]{0,63})$")]
PriceSize = Annotated[str, StringConstraints(pattern=r"^(\*|auto|[0-9]{2,5}x[0-9]{2,5})$")]
PriceQuality = Annotated[str, StringConstraints(pattern=r"^(\*|auto|low|medium|high)$")]
PerImageCredits = Annotated[int, Field(ge=0, le=MAX_PER_IMAGE)]
QualityPrices = Annotated[dict[PriceQuality, PerImageCredits], Field(min_length=1)]
SizePrices = Annotated[dict[PriceSize, QualityPrices], Field(min_length=1)]
PriceList = Annotated[dict[PriceModel, SizePrices], Field(min_length=1)]

#: Codes of the budget and weight fields shared by the tenant bodies.
_TENANT_CODES = {
    "name": "invalid_tenant_name",
    "weight": "invalid_weight",
    "max_running": "invalid_max_running",
    "budget_usd_day": "invalid_budget",
    "budget_usd_month": "invalid_budget",
    "budget_usd_total": "invalid_budget",
    "plan": "invalid_plan_name",
    "default_priority": "invalid_default_priority",
}


class AdminBody(Public):
    """An admin request body: strict types, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)

    #: The refusal code of each field (any other problem: `invalid_parameter`).
    codes: ClassVar[dict[str, str]] = {}

    def budgets(self) -> dict[str, int | None]:
        """The budgets this body sets (None: cleared), by period."""
        return {
            period: getattr(self, f"budget_usd_{period}")
            for period in ("day", "month", "total")
            if f"budget_usd_{period}" in self.model_fields_set
        }


class TenantPatch(AdminBody):
    """Only the fields sent change; a budget, `max_running` or `plan` sent as null is cleared.
    A new `plan` prices the jobs submitted from then on."""

    codes = _TENANT_CODES

    weight: Weight = 1
    max_running: MaxRunning = None
    budget_usd_day: BudgetUsd = None
    budget_usd_month: BudgetUsd = None
    budget_usd_total: BudgetUsd = None
    plan: TenantName | None = None
    #: The priority of the tenant's jobs that name none; null: interactive.
    default_priority: Literal["interactive", "batch", "economy"] | None = None


class TenantCreate(TenantPatch):
    """A new tenant. Budgets left out (or null) are unlimited; without `plan` it pays in
    provider dollars only."""

    name: TenantName


class PlanCreate(AdminBody):
    """A credit plan: `credit_usd` and either `markup` (credits = ceil(cost x (1 + markup) /
    credit_usd)) or `per_image` (credits per output image by model, provider size and quality;
    `*` matches any). Plans never change once made."""

    codes = {
        "name": "invalid_plan_name",
        "credit_usd": "invalid_credit_usd",
        "markup": "invalid_markup",
        "per_image": "invalid_per_image",
    }

    name: TenantName
    credit_usd: CreditUsd
    markup: Markup = None
    per_image: PriceList | None = None

    def to_plan(self, catalogue: Catalogue, created_at: int) -> Plan:
        """The plan: a markup, or a price list naming catalogued models (or `*`)."""
        if (self.markup is None) == (self.per_image is None):
            raise InvalidRequest("invalid_plan", "give either markup or per_image (not both)", "markup")
        for model in self.per_image or {}:
            if model != WILDCARD and model not in catalogue.models:
                raise InvalidRequest(
                    "invalid_per_image", f"per_image names {model!r}, not a catalogued model", "per_image"
                )
        return Plan(self.name, self.credit_usd, self.markup, self.per_image, created_at)


class TopUp(AdminBody):
    """Credits added to the tenant's balance; `note` (up to 200 characters) goes to the ledger."""

    codes = {"credits": "invalid_credits", "note": "invalid_note"}

    credits: Annotated[int, Field(ge=1, le=MAX_TOP_UP)]
    note: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""


class TenantBudgets(Public):
    day: str | None
    month: str | None
    total: str | None


class AdminTenant(Public):
    """A tenant's settings, where each budget period stands now, and its credits."""

    object: Literal["tenant"] = "tenant"
    name: str
    weight: int
    max_running: int | None
    budgets_usd: TenantBudgets
    plan: str | None
    default_priority: str | None
    created_at: int
    budgets: dict[str, Budget]
    credits: CreditBalance


class CreatedTenant(AdminTenant):
    """The new tenant with its webhook signing secret (also readable later with a tenant key:
    `GET /v1/webhooks/secret`)."""

    webhook_secret: str


class TenantList(Public):
    """Tenants by name; pass the last `name` as `after` for the next page."""

    object: Literal["list"] = "list"
    data: list[AdminTenant]
    has_more: bool


class ApiKeyInfo(Public):
    """A live API key, by id (the key itself is never shown again)."""

    object: Literal["api_key"] = "api_key"
    id: str
    tenant: str
    created_at: int


class NewApiKey(ApiKeyInfo):
    """`key` is shown here only: editq keeps its SHA-256."""

    key: str


class ApiKeyList(Public):
    object: Literal["list"] = "list"
    data: list[ApiKeyInfo]


class RevokedApiKey(Public):
    object: Literal["api_key"] = "api_key"
    id: str
    tenant: str
    revoked: Literal[True] = True


class PlanInfo(Public):
    """A credit plan: `markup` (a decimal string) or `per_image` is set, the other null."""

    object: Literal["plan"] = "plan"
    name: str
    credit_usd: str
    markup: str | None
    per_image: dict[str, dict[str, dict[str, int]]] | None
    created_at: int


class PlanList(Public):
    object: Literal["list"] = "list"
    data: list[PlanInfo]


class TenantCredits(CreditBalance):
    """The tenant's credits after a top-up."""

    object: Literal["credit_balance"] = "credit_balance"
    tenant: str


class ProviderAccount(Public):
    """One provider account as admission sees it (`editq provider` prints the same)."""

    object: Literal["provider_account"] = "provider_account"
    name: str
    kind: Literal["openai", "azure"]
    #: Catalogue names the account runs; null: every model (the one-account shorthand).
    models: list[str] | None
    ipm_configured: int
    rpm_configured: int
    #: The rates the limiter uses now (cut after 429s, capped by the provider's headers).
    ipm_effective: float
    rpm_effective: float
    inflight: int
    max_inflight: int
    #: `ok`; `paused` (no new work until `paused_until_ms`); `probing` (one call at a time).
    state: Literal["ok", "paused", "probing"]
    paused: bool
    pause_reason: str | None
    paused_until_ms: int | None
    probing: bool


class ProviderAccountList(Public):
    object: Literal["list"] = "list"
    data: list[ProviderAccount]
