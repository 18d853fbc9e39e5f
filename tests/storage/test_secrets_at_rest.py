"""Webhook signing secrets are encrypted in Redis (EDITQ_SECRETS_KEY); plain records written
before a key was set still read and are sealed on first read; keys rotate."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet

from editq.settings import Settings
from editq.storage import sealing, tenants
from editq.storage.backend import Backend
from tests.support.stack import Universe


def _everything_stored(u: Universe) -> str:
    r, parts = u.redis, []
    for key in r.scan_iter(f"{u.prefix}:*"):
        kind = r.type(key)
        if kind == "hash":
            parts.extend(r.hgetall(key).values())
        elif kind == "string":
            parts.append(r.get(key) or "")
    return "\n".join(parts)


def test_no_signing_secret_in_redis(stack: Universe) -> None:
    tenant, key = stack.tenant()
    with stack.client(key) as client:
        shown = client.get("/v1/webhooks/secret").json()
        client.post("/v1/webhooks/secret/rotate").raise_for_status()
    assert "whsec_" in json.dumps(shown)
    assert tenants.secrets_of(stack.db, tenant)[0]["secret"].startswith("whsec_")
    assert "whsec_" not in _everything_stored(stack)


def test_plain_records_still_read_and_are_sealed_on_read(stack: Universe) -> None:
    tenant, _ = stack.tenant()
    legacy = [
        {"secret": "whsec_bGVnYWN5LXNlY3JldC0zMi1ieXRlcy1sb25nISE=", "created_at": 1, "expires_at": None}
    ]
    stack.redis.hset(f"{stack.prefix}:tenant:{tenant}", "webhook_secrets", json.dumps(legacy))
    assert tenants.secrets_of(stack.db, tenant) == legacy
    stored = stack.redis.hget(f"{stack.prefix}:tenant:{tenant}", "webhook_secrets")
    assert stored.startswith(sealing.SEALED)
    assert "whsec_" not in stored


def test_keys_rotate_first_encrypts_all_decrypt(stack: Universe) -> None:
    tenant, _ = stack.tenant()
    before = tenants.secrets_of(stack.db, tenant)
    old = stack.env["EDITQ_SECRETS_KEY"]
    new = Fernet.generate_key().decode()
    field = f"{stack.prefix}:tenant:{tenant}"
    sealed_old = stack.redis.hget(field, "webhook_secrets")
    both = Backend.connect(Settings.from_env({**stack.env, "EDITQ_SECRETS_KEY": f"{new},{old}"}))
    only_new = Backend.connect(Settings.from_env({**stack.env, "EDITQ_SECRETS_KEY": new}))
    try:
        assert tenants.secrets_of(both, tenant) == before
        resealed = stack.redis.hget(field, "webhook_secrets")
        assert resealed != sealed_old
        assert tenants.secrets_of(only_new, tenant) == before
    finally:
        both.close()
        only_new.close()
