"""Stored source images: the S3 object (content-addressed per tenant) and its Redis record."""

from __future__ import annotations

from typing import Any

from editq.images import SourceImage
from editq.storage.backend import Backend
from editq.storage.keys import source_object


def image_id(sha256: str) -> str:
    return f"img_{sha256}"


def sha_of(image_ref: str) -> str | None:
    if not image_ref.startswith("img_"):
        return None
    sha = image_ref[4:]
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        return None
    return sha


def describe(image: SourceImage) -> dict[str, Any]:
    return {
        "id": image_id(image.sha256),
        "sha256": image.sha256,
        "content_type": image.content_type,
        "width": image.width,
        "height": image.height,
        "bytes": len(image.data),
        "has_alpha": image.has_alpha,
    }


def put(db: Backend, tenant: str, image: SourceImage, retention_s: int) -> dict[str, Any]:
    """Store the bytes (idempotent for the same content) and (re)arm the record's expiry."""
    db.objects.put(source_object(tenant, image.sha256), image.data, image.content_type)
    meta = describe(image)
    record = {k: str(v) for k, v in meta.items()}
    record["stored_at"] = str(int(db.clock.time()))
    key = db.keys.image(tenant, image.sha256)
    pipe = db.redis.pipeline()
    pipe.hset(key, mapping=record)
    pipe.expire(key, retention_s)
    pipe.execute()
    meta["expires_at"] = int(db.clock.time()) + retention_s
    return meta


def get(db: Backend, tenant: str, image_ref: str) -> dict[str, Any] | None:
    sha = sha_of(image_ref)
    if sha is None:
        return None
    h = db.redis.hgetall(db.keys.image(tenant, sha))
    if not h:
        return None
    return {
        "id": h["id"],
        "sha256": h["sha256"],
        "content_type": h["content_type"],
        "width": int(h["width"]),
        "height": int(h["height"]),
        "bytes": int(h["bytes"]),
        "has_alpha": h.get("has_alpha") == "True",
    }
