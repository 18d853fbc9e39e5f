"""The admin API's bodies and answers (`/v1/admin/*`).

Request bodies are strict: unknown fields, wrong types and out-of-range values are refused, each
field with its own code (`FIELD_CODES`). Amounts are USD as plain decimals (a string such as
`"12.50"`, or a JSON number) with at most 6 decimal places.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

from editq.api.schemas import Budget
from editq.cost import usd
from editq.public import Public
from editq.storage.tenants import MAX_BUDGET_MICROS, MAX_RUNNING, MAX_WEIGHT, NAME

_DECIMAL = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?", re.ASCII)


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


#: A budget in USD, read into micro-dollars; null clears it.
BudgetUsd = Annotated[
    int | None,
    BeforeValidator(amount_micros),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "pattern": _DECIMAL.pattern}, {"type": "number"}, {"type": "null"}],
            "description": "USD, at most 6 decimal places, 0 to 1e9; null for no limit",
        }
    ),
]
TenantName = Annotated[str, StringConstraints(pattern=f"^{NAME.pattern}$")]
Weight = Annotated[int, Field(ge=1, le=MAX_WEIGHT, description="share in fair admission")]
MaxRunning = Annotated[
    int | None, Field(ge=0, le=MAX_RUNNING, description="cap on running jobs; 0 or null for none")
]

#: The refusal code of each body field (any other problem: `invalid_parameter`).
FIELD_CODES = {
    "name": "invalid_tenant_name",
    "weight": "invalid_weight",
    "max_running": "invalid_max_running",
    "budget_usd_day": "invalid_budget",
    "budget_usd_month": "invalid_budget",
    "budget_usd_total": "invalid_budget",
}


class _Body(Public):
    model_config = ConfigDict(extra="forbid", strict=True)

    def budgets(self) -> dict[str, int | None]:
        """The budgets this body sets (None: cleared), by period."""
        return {
            period: getattr(self, f"budget_usd_{period}")
            for period in ("day", "month", "total")
            if f"budget_usd_{period}" in self.model_fields_set
        }


class TenantPatch(_Body):
    """Only the fields sent change; a budget or `max_running` sent as null is cleared."""

    weight: Weight = 1
    max_running: MaxRunning = None
    budget_usd_day: BudgetUsd = None
    budget_usd_month: BudgetUsd = None
    budget_usd_total: BudgetUsd = None


class TenantCreate(TenantPatch):
    """A new tenant. Budgets left out (or null) are unlimited."""

    name: TenantName


class TenantBudgets(Public):
    day: str | None
    month: str | None
    total: str | None


class AdminTenant(Public):
    """A tenant's settings, and where each budget period stands now."""

    object: Literal["tenant"] = "tenant"
    name: str
    weight: int
    max_running: int | None
    budgets_usd: TenantBudgets
    created_at: int
    budgets: dict[str, Budget]


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
