"""Idempotency-Key records, per tenant (IETF httpapi draft and Stripe semantics)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from editq.errors import Conflict, InvalidRequest, Unprocessable
from editq.storage.backend import Backend

#: An in-flight claim lapses after this long if its API process died mid-request.
IN_FLIGHT_TTL_S = 120
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_key(header: str | None) -> str | None:
    """The key from an `Idempotency-Key` header; a quoted structured-field string or a token."""
    if header is None:
        return None
    value = header.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value or len(value) > MAX_KEY_LENGTH or not value.isprintable():
        raise InvalidRequest(
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters",
            "Idempotency-Key",
        )
    return value


def begin(db: Backend, tenant: str, key: str, fingerprint: str) -> Replay | None:
    """Claim `key` for this request, or the stored answer to replay; 409/422 otherwise."""
    result = db.scripts.run("idempotency", tenant, key_hash(key), fingerprint, "begin", IN_FLIGHT_TTL_S)
    outcome = str(result[0])
    if outcome == "new":
        return None
    if outcome == "in_flight":
        raise Conflict(
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still being processed; retry shortly",
            "Idempotency-Key",
        )
    if outcome == "mismatch":
        raise Unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
            "Idempotency-Key",
        )
    return Replay(int(result[1]), json.loads(result[2]))


def abort(db: Backend, tenant: str, key: str, fingerprint: str) -> None:
    """Forget a claim whose request failed, so the client can retry with the same key."""
    db.scripts.run("idempotency", tenant, key_hash(key), fingerprint, "abort", IN_FLIGHT_TTL_S)


def store(db: Backend, tenant: str, key: str, status: int, body: dict[str, Any], ttl_s: int) -> None:
    """Keep an answer that was not written by the submit script (batch responses)."""
    ikey = db.keys.idempotency(tenant, key_hash(key))
    pipe = db.redis.pipeline()
    pipe.hset(ikey, mapping={"state": "done", "status": str(status), "body": json.dumps(body)})
    pipe.expire(ikey, ttl_s)
    pipe.execute()
