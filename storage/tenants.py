"""Tenants, their API keys (stored hashed) and their webhook signing secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from editq.cost import usd
from editq.storage import sealing
from editq.storage.backend import Backend
from editq.storage.errors import StorageUnavailable

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
KEY_PREFIX = "eq"
BUDGET_PERIODS = ("day", "month", "total")
#: What a tenant's jobs run at when they name no priority ("" : interactive).
DEFAULT_PRIORITIES = ("", "interactive", "batch", "economy")


class TenantError(ValueError):
    """A tenant or key command that cannot be carried out (the message says why)."""


@dataclass(frozen=True)
class Tenant:
    name: str
    weight: int
    max_running: int
    budgets: dict[str, int | None]
    created_at: int
    #: The priority of jobs that name none (None: interactive).
    default_priority: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weight": self.weight,
            "max_running": self.max_running or None,
            "default_priority": self.default_priority,
            "budgets_usd": {
                period: None if amount is None else usd(amount) for period, amount in self.budgets.items()
            },
            "created_at": self.created_at,
        }


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create(
    db: Backend,
    name: str,
    *,
    weight: int = 1,
    max_running: int = 0,
    budgets: dict[str, int | None] | None = None,
    exist_ok: bool = False,
    default_priority: str = "",
) -> Tenant:
    if not NAME.match(name):
        raise TenantError("tenant names are 1-63 of a-z, 0-9, '-' and '_', starting alphanumeric")
    if weight < 1 or max_running < 0:
        raise TenantError("weight is at least 1 and max_running at least 0")
    _check_priority(default_priority)
    key = db.keys.tenant(name)
    if not db.redis.sadd(db.keys.tenants, name):
        if exist_ok:
            found = get(db, name)
            assert found is not None
            return found
        raise TenantError(f"tenant {name!r} already exists")
    mapping: dict[str, str] = {
        "name": name,
        "weight": str(weight),
        "max_running": str(max_running),
        "created_at": str(int(db.clock.time())),
        "webhook_secrets": _seal_secrets(
            db, [{"secret": _new_secret(), "created_at": int(db.clock.time()), "expires_at": None}]
        ),
    }
    for period, amount in (budgets or {}).items():
        if amount is not None:
            mapping[f"budget_{period}"] = str(amount)
    if default_priority:
        mapping["default_priority"] = default_priority
    db.redis.hset(key, mapping=mapping)
    found = get(db, name)
    assert found is not None
    return found


def update(
    db: Backend,
    name: str,
    *,
    weight: int | None = None,
    max_running: int | None = None,
    budgets: dict[str, int | None] | None = None,
    default_priority: str | None = None,
) -> Tenant:
    """Change what is given; `default_priority=""` goes back to interactive."""
    key = db.keys.tenant(name)
    if not db.redis.exists(key):
        raise TenantError(f"no tenant {name!r}")
    if default_priority is not None:
        _check_priority(default_priority)
        db.redis.hset(key, "default_priority", default_priority)
    if weight is not None:
        if weight < 1:
            raise TenantError("weight is at least 1")
        db.redis.hset(key, "weight", str(weight))
    if max_running is not None:
        db.redis.hset(key, "max_running", str(max_running))
    for period, amount in (budgets or {}).items():
        if amount is None:
            db.redis.hdel(key, f"budget_{period}")
        else:
            db.redis.hset(key, f"budget_{period}", str(amount))
    found = get(db, name)
    assert found is not None
    return found


def get(db: Backend, name: str) -> Tenant | None:
    h = db.redis.hgetall(db.keys.tenant(name))
    if not h:
        return None
    return Tenant(
        name=name,
        weight=int(h.get("weight", "1")),
        max_running=int(h.get("max_running", "0")),
        budgets={p: int(h[f"budget_{p}"]) if h.get(f"budget_{p}") else None for p in BUDGET_PERIODS},
        created_at=int(h.get("created_at", "0")),
        default_priority=h.get("default_priority") or None,
    )


def _check_priority(priority: str) -> None:
    if priority not in DEFAULT_PRIORITIES:
        raise TenantError(f"a default priority is one of {', '.join(p for p in DEFAULT_PRIORITIES if p)}")


def names(db: Backend) -> list[str]:
    return sorted(db.redis.smembers(db.keys.tenants))


def create_key(db: Backend, tenant: str) -> str:
    """A new API key for `tenant`, returned once; only its SHA-256 is kept."""
    if not db.redis.exists(db.keys.tenant(tenant)):
        raise TenantError(f"no tenant {tenant!r}")
    key_id = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    store_key(db, tenant, key, key_id)
    return key


def store_key(db: Backend, tenant: str, key: str, key_id: str) -> None:
    digest = _digest(key)
    pipe = db.redis.pipeline()
    pipe.hset(
        db.keys.api_key(digest),
        mapping={"tenant": tenant, "key_id": key_id, "created_at": str(int(db.clock.time()))},
    )
    pipe.hset(db.keys.tenant_keys(tenant), key_id, digest)
    pipe.execute()


def ensure_bootstrap(db: Backend, key: str) -> None:
    """Tenant `dev` with `key`, as EDITQ_BOOTSTRAP_API_KEY asks."""
    create(db, "dev", exist_ok=True)
    found = db.redis.hgetall(db.keys.api_key(_digest(key)))
    if found.get("tenant") == "dev" and not found.get("revoked_at"):
        return
    if found and found.get("tenant") != "dev":
        raise TenantError("EDITQ_BOOTSTRAP_API_KEY already belongs to another tenant")
    store_key(db, "dev", key, "bootstrap")


def authenticate(db: Backend, key: str) -> str | None:
    """The tenant owning `key`, or None. The stored digest is compared in constant time."""
    if not key or len(key) > 256:
        return None
    digest = _digest(key)
    try:
        found = db.redis.hgetall(db.keys.api_key(digest))
    except StorageUnavailable as exc:
        raise StorageUnavailable(f"redis: {exc}") from exc
    if not found or found.get("revoked_at"):
        return None
    stored = db.redis.hget(db.keys.tenant_keys(found["tenant"]), found["key_id"]) or ""
    if not hmac.compare_digest(stored.encode(), digest.encode()):
        return None
    return str(found["tenant"])


def revoke_key(db: Backend, key_or_id: str) -> str:
    """Revoke by the full key or by its id (the part after `eq_`). Returns the tenant."""
    found = db.redis.hgetall(db.keys.api_key(_digest(key_or_id)))
    if found:
        digest = _digest(key_or_id)
    else:
        key_id = key_or_id.split("_")[1] if key_or_id.startswith(f"{KEY_PREFIX}_") else key_or_id
        digest = ""
        for tenant in names(db):
            digest = db.redis.hget(db.keys.tenant_keys(tenant), key_id) or ""
            if digest:
                break
        if not digest:
            raise TenantError("no such key")
        found = db.redis.hgetall(db.keys.api_key(digest))
    db.redis.hset(db.keys.api_key(digest), "revoked_at", str(int(db.clock.time())))
    db.redis.hdel(db.keys.tenant_keys(found["tenant"]), found["key_id"])
    return str(found["tenant"])


def list_keys(db: Backend, tenant: str) -> list[str]:
    return sorted(db.redis.hkeys(db.keys.tenant_keys(tenant)))


def _seal_secrets(db: Backend, items: list[dict[str, Any]]) -> str:
    return sealing.seal(db.settings, json.dumps(items))


def secrets_of(db: Backend, tenant: str) -> list[dict[str, Any]]:
    """Signing secrets still in use, newest first (an old one lives on until `expires_at`).
    A record stored in plain text or under an older key is sealed again with the current one."""
    key = db.keys.tenant(tenant)
    raw = db.redis.hget(key, "webhook_secrets")
    items: list[dict[str, Any]] = []
    if raw:
        text, stale = sealing.unseal(db.settings, raw)
        items = json.loads(text)
        if stale:
            # only if nobody rewrote it meanwhile (a rotation wins over this migration)
            db.scripts.run("reseal", tenant, raw, _seal_secrets(db, items))
    now = db.clock.time()
    return [s for s in items if s.get("expires_at") is None or s["expires_at"] > now]


def rotate_secret(db: Backend, tenant: str, overlap_seconds: int) -> list[dict[str, Any]]:
    """A new current secret; the previous ones keep signing for `overlap_seconds`."""
    now = int(db.clock.time())
    current = secrets_of(db, tenant)
    for item in current:
        if item.get("expires_at") is None:
            item["expires_at"] = now + overlap_seconds
    updated = [{"secret": _new_secret(), "created_at": now, "expires_at": None}, *current]
    db.redis.hset(db.keys.tenant(tenant), "webhook_secrets", _seal_secrets(db, updated))
    return updated


def disabled_urls(db: Backend, tenant: str) -> set[str]:
    return set(db.redis.smembers(db.keys.disabled_urls(tenant)))


def is_disabled(db: Backend, tenant: str, url: str) -> bool:
    return bool(db.redis.sismember(db.keys.disabled_urls(tenant), url))


def enable_url(db: Backend, tenant: str, url: str) -> bool:
    return bool(db.redis.srem(db.keys.disabled_urls(tenant), url))
