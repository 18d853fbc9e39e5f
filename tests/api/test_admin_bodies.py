"""The admin API's body rules without a server: amounts, partial updates, refusal codes, and the
admin key's own settings check."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from editq.api.admin import refusal
from editq.api.admin_schemas import TenantCreate, TenantPatch, amount_micros
from editq.settings import Settings


@pytest.mark.parametrize(
    ("value", "micros"),
    [("0", 0), ("12.5", 12_500_000), ("0.000001", 1), (2, 2_000_000), (0.1, 100_000), (1e9, 10**15)],
)
def test_amounts_are_exact_micro_dollars(value: Any, micros: int) -> None:
    assert amount_micros(value) == micros


@pytest.mark.parametrize(
    "value", ["-1", "1e3", "1,5", "", " 1", "0.0000001", "1000000000.000001", -0.5, 1e-7, 1e10, float("nan")]
)
def test_amounts_out_of_form_or_range_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="amount"):
        amount_micros(value)


@pytest.mark.parametrize("value", [True, None, [], {"usd": 1}])
def test_non_amounts_are_left_for_the_type_check(value: Any) -> None:
    assert amount_micros(value) is value


def _refused(model: type[TenantCreate] | type[TenantPatch], body: dict[str, Any]) -> tuple[str, str | None]:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(body)
    error = refusal(exc.value, model.codes)
    return error.code, error.param


def test_each_field_refuses_with_its_own_code() -> None:
    assert _refused(TenantCreate, {"name": "a", "extra": 1}) == ("unknown_parameter", "extra")
    assert _refused(TenantCreate, {"name": "a\n"}) == ("invalid_tenant_name", "name")
    assert _refused(TenantCreate, {"name": "a", "weight": False}) == ("invalid_weight", "weight")
    assert _refused(TenantPatch, {"budget_usd_month": "x"}) == ("invalid_budget", "budget_usd_month")
    assert _refused(TenantPatch, {"max_running": 1.0}) == ("invalid_max_running", "max_running")


def test_a_patch_knows_which_budgets_it_sets_and_clears() -> None:
    patch = TenantPatch.model_validate({"budget_usd_day": None, "budget_usd_total": "4.25"})
    assert patch.budgets() == {"day": None, "total": 4_250_000}
    assert TenantPatch.model_validate({"weight": 3}).budgets() == {}


@pytest.mark.parametrize("key", ["changeme", "short-key", "secret"])
def test_weak_admin_keys_are_refused_at_start(key: str) -> None:
    with pytest.raises(ValidationError, match="EDITQ_ADMIN_API_KEY"):
        Settings.from_env({"EDITQ_ADMIN_API_KEY": key})


def test_a_blank_admin_key_turns_the_admin_api_off() -> None:
    assert Settings.from_env({"EDITQ_ADMIN_API_KEY": "  "}).admin_api_key is None
    assert Settings.from_env({}).admin_api_key is None
