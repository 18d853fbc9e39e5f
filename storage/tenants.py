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

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
KEY_PREFIX = "eq"
BUDGET_PERIODS = ("day", "month", "total")
#: Highest weight a tenant may have (fair admission divides by it).
MAX_WEIGHT = 1000
#: Highest cap on a tenant's running jobs (0 means no cap).
MAX_RUNNING = 100_000
#: Largest budget in micro-dollars ($1,000,000,000): Lua's arithmetic stays exact far beyond it.
MAX_BUDGET_MICROS = 10**15


class TenantError(ValueError):
    """A tenant or key command that cannot be carried out (the message says why)."""


class TenantExists(TenantError):
    """A tenant by that name exists already."""


class NoSuchTenant(TenantError):
    """No tenant by that name."""


class NoSuchKey(TenantError):
    """No live key by that id."""


@dataclass(frozen=True)
class Tenant:
    name: str
    weight: int
    max_running: int
    budgets: dict[str, int | None]
    created_at: int
    #: The credit plan the tenant's new jobs are priced on (None: plain provider dollars).
    plan: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weight": self.weight,
            "max_running": self.max_running or None,
            "budgets_usd": {
                period: None if amount is None else usd(amount) for period, amount in self.budgets.items()
            },
            "plan": self.plan,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class KeyInfo:
    """A live API key, without the key: its id and when it was made (unix seconds)."""

    id: str
    created_at: int


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check(
    *,
    name: str | None = None,
    weight: int | None = None,
    max_running: int | None = None,
    budgets: dict[str, int | None] | None = None,
) -> None:
    """Refuse values a tenant may not have (the admin API checks them first, with its codes)."""
    if name is not None and not NAME.fullmatch(name):
        raise TenantError("tenant names are 1-63 of a-z, 0-9, '-' and '_', starting alphanumeric")
    if weight is not None and not 1 <= weight <= MAX_WEIGHT:
        raise TenantError(f"weight is 1 to {MAX_WEIGHT}")
    if max_running is not None and not 0 <= max_running <= MAX_RUNNING:
        raise TenantError(f"max_running is 0 (no cap) to {MAX_RUNNING}")
    for period, amount in (budgets or {}).items():
        if period not in BUDGET_PERIODS:
            raise TenantError(f"budget periods are {', '.join(BUDGET_PERIODS)}")
        if amount is not None and not 0 <= amount <= MAX_BUDGET_MICROS:
            raise TenantError(f"a budget is $0 to ${usd(MAX_BUDGET_MICROS)}")


def create(
    db: Backend,
    name: str,
    *,
    weight: int = 1,
    max_running: int = 0,
    budgets: dict[str, int | None] | None = None,
    exist_ok: bool = False,
) -> Tenant:
    """A new tenant with its first webhook signing secret, written at once (one script)."""
    check(name=name, weight=weight, max_running=max_running, budgets=budgets)
    now = int(db.clock.time())
    mapping: dict[str, str] = {
        "name": name,
        "weight": str(weight),
        "max_running": str(max_running),
        "created_at": str(now),
        "webhook_secrets": _seal_secrets(
            db, [{"secret": _new_secret(), "created_at": now, "expires_at": None}]
        ),
    }
    for period, amount in (budgets or {}).items():
        if amount is not None:
            mapping[f"budget_{period}"] = str(amount)
    created = db.scripts.run("tenant_create", name, *(part for item in mapping.items() for part in item))
    if not created and not exist_ok:
        raise TenantExists(f"tenant {name!r} already exists")
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
) -> Tenant:
    """Change what is given (a budget of None is cleared), all at once."""
    check(weight=weight, max_running=max_running, budgets=budgets)
    key = db.keys.tenant(name)
    if not db.redis.exists(key):
        raise NoSuchTenant(f"no tenant {name!r}")
    changes = {"weight": weight, "max_running": max_running}
    pipe = db.redis.pipeline()
    for field, value in changes.items():
        if value is not None:
            pipe.hset(key, field, str(value))
    for period, amount in (budgets or {}).items():
        if amount is None:
            pipe.hdel(key, f"budget_{period}")
        else:
            pipe.hset(key, f"budget_{period}", str(amount))
    pipe.execute()
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
        plan=h.get("plan") or None,
    )


def names(db: Backend) -> list[str]:
    return sorted(db.redis.smembers(db.keys.tenants))


def issue_key(db: Backend, tenant: str) -> tuple[str, str]:
    """A new API key for `tenant` as (id, key); the key is shown once, only its SHA-256 kept."""
    if not db.redis.exists(db.keys.tenant(tenant)):
        raise NoSuchTenant(f"no tenant {tenant!r}")
    key_id = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    store_key(db, tenant, key, key_id)
    return key_id, key


def create_key(db: Backend, tenant: str) -> str:
    """A new API key for `tenant`, returned once; only its SHA-256 is kept."""
    return issue_key(db, tenant)[1]


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


def revoke(db: Backend, tenant: str, key_id: str) -> None:
    """Revoke `tenant`'s key `key_id`: it stops working with the next request."""
    digest = db.redis.hget(db.keys.tenant_keys(tenant), key_id)
    if not digest:
        raise NoSuchKey(f"tenant {tenant!r} has no key {key_id!r}")
    pipe = db.redis.pipeline()
    pipe.hset(db.keys.api_key(digest), "revoked_at", str(int(db.clock.time())))
    pipe.hdel(db.keys.tenant_keys(tenant), key_id)
    if not pipe.execute()[1]:
        raise NoSuchKey(f"tenant {tenant!r} has no key {key_id!r}")


def revoke_key(db: Backend, key_or_id: str) -> str:
    """Revoke by the full key or by its id (the part after `eq_`). Returns the tenant."""
    found = db.redis.hgetall(db.keys.api_key(_digest(key_or_id)))
    if found:
        revoke(db, found["tenant"], found["key_id"])
        return str(found["tenant"])
    key_id = key_or_id.split("_")[1] if key_or_id.startswith(f"{KEY_PREFIX}_") else key_or_id
    for tenant in names(db):
        if db.redis.hexists(db.keys.tenant_keys(tenant), key_id):
            revoke(db, tenant, key_id)
            return tenant
    raise NoSuchKey("no such key")


def list_keys(db: Backend, tenant: str) -> list[str]:
    return sorted(db.redis.hkeys(db.keys.tenant_keys(tenant)))


def keys_of(db: Backend, tenant: str) -> list[KeyInfo]:
    """`tenant`'s live keys, oldest first."""
    ids = db.redis.hgetall(db.keys.tenant_keys(tenant))
    pipe = db.redis.pipeline(transaction=False)
    for digest in ids.values():
        pipe.hget(db.keys.api_key(digest), "created_at")
    made = pipe.execute()
    found = [KeyInfo(key_id, int(at or 0)) for key_id, at in zip(ids, made, strict=True)]
    return sorted(found, key=lambda k: (k.created_at, k.id))


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
