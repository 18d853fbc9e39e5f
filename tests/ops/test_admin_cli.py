"""`editq tenants` and `editq keys` through the admin API (`--api` / EDITQ_API_URL with
EDITQ_ADMIN_API_KEY), and on Redis directly without them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from editq.storage import credits, tenants
from tests.ops.test_run_and_cli import _editq
from tests.support.stack import Universe


def _ok(*args: str, env: dict[str, str]) -> str:
    return _editq(*args, env=env).stdout


def test_tenants_and_keys_through_the_admin_api(stack: Universe) -> None:
    # a Redis nobody listens on: every command below must go through the API
    env = {**stack.env, "EDITQ_REDIS_URL": "redis://127.0.0.1:1/0", "EDITQ_API_URL": ""}
    api = ("--api", stack.api_url)
    name = f"cli{uuid.uuid4().hex[:8]}"
    made = json.loads(_ok("tenants", "create", name, "--budget-usd-day", "5", "--weight", "2", *api, env=env))
    assert made["webhook_secret"].startswith("whsec_")
    assert made["budgets_usd"]["day"] == "5.000000"
    taken = _editq("tenants", "create", name, *api, env=env, check=False)
    assert taken.returncode == 1
    assert "409 tenant_exists" in taken.stderr
    changed = json.loads(
        _ok("tenants", "update", name, "--clear-budget", "day", "--budget-usd-total", "9", *api, env=env)
    )
    assert changed["budgets_usd"] == {"day": None, "month": None, "total": "9.000000"}

    key = _ok("keys", "create", name, *api, env=env).strip()
    assert tenants.authenticate(stack.db, key) == name
    shown = json.loads(_ok("tenants", "show", name, *api, env=env))
    assert shown["weight"] == 2
    assert shown["keys"] == [key.split("_")[1]]
    assert _ok("keys", "revoke", key, *api, env=env).strip() == f"revoked a key of {name}"
    assert tenants.authenticate(stack.db, key) is None


def test_the_api_url_alone_still_means_redis_and_api_needs_the_admin_key(stack: Universe) -> None:
    name = f"cli{uuid.uuid4().hex[:8]}"
    no_admin = {k: v for k, v in stack.env.items() if k != "EDITQ_ADMIN_API_KEY"}
    # pointed at a dead API: only Redis can have answered
    env = {**no_admin, "EDITQ_API_URL": "http://127.0.0.1:1"}
    assert json.loads(_ok("tenants", "create", name, env=env))["name"] == name
    key = tenants.create_key(stack.db, name)
    assert _ok("keys", "revoke", key.split("_")[1], "--tenant", name, env=env).strip().endswith(name)
    assert tenants.authenticate(stack.db, key) is None
    refused = _editq("tenants", "list", "--api", stack.api_url, env=no_admin, check=False)
    assert refused.returncode != 0
    assert "EDITQ_ADMIN_API_KEY" in refused.stderr


def test_plans_and_top_ups_both_ways(stack: Universe, tmp_path: Path) -> None:
    name, tenant = f"cli{uuid.uuid4().hex[:8]}", stack.tenant()[0]
    api = {**stack.env, "EDITQ_REDIS_URL": "redis://127.0.0.1:1/0", "EDITQ_API_URL": stack.api_url}
    redis = {k: v for k, v in stack.env.items() if k != "EDITQ_ADMIN_API_KEY"}
    made = json.loads(_ok("plans", "create", name, "--credit-usd", "0.02", "--markup", "0.5", env=api))
    assert (made["credit_usd"], made["markup"]) == ("0.020000", "0.5")
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"*": {"*": {"*": 3}}}))
    listed = json.loads(
        _ok("plans", "create", f"{name}b", "--credit-usd", "1", "--per-image", f"@{prices}", env=redis)
    )
    assert listed["per_image"] == {"*": {"*": {"*": 3}}}
    bad = _editq("plans", "create", f"{name}c", "--credit-usd", "-1", "--markup", "0", env=redis, check=False)
    assert "invalid_credit_usd" in bad.stderr
    assert _ok("plans", "list", env=api).split().count(f"{name}b") == 1
    moved = json.loads(_ok("tenants", "update", tenant, "--plan", name, env=api))
    assert moved["plan"] == name
    topped = json.loads(_ok("tenants", "top-up", tenant, "40", "--note", "inv 1", env=redis))
    assert (topped["plan"], topped["balance"]) == (name, 40)
    assert credits.balance(stack.db, tenant).balance == 40
    for env in (api, redis, api):  # a repeated top-up under its key adds nothing, either way
        keyed = json.loads(_ok("tenants", "top-up", tenant, "5", "--idempotency-key", "inv-2", env=env))
        assert keyed["balance"] == 45
    reused = _editq("tenants", "top-up", tenant, "6", "--idempotency-key", "inv-2", env=api, check=False)
    assert "idempotency_key_reused" in reused.stderr
    assert credits.balance(stack.db, tenant).balance == 45
    assert credits.get_plan(stack.db, f"{name}c") is None
