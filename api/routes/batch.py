"""Uploads (store an image once, use it in many jobs) and batch submission."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from editq import images as pillow
from editq import logs
from editq.api import inputs, openapi
from editq.api.deps import DB, CancelAfter, ContentType, IdempotencyKey, Models, Tenant, Uploads
from editq.api.multipart import Limits, read_form
from editq.api.schemas import UPLOAD_CODES, BatchAnswer, Image, errors
from editq.api.submit import admit
from editq.errors import EditqError, InvalidRequest, Unavailable
from editq.lifecycle import Availability
from editq.options import parse_options
from editq.storage import idempotency, images
from editq.storage import models as model_store
from editq.storage.errors import StorageError

log = logging.getLogger("editq.api")
router = APIRouter(prefix="/v1", tags=["batch"])

MAX_BATCH_BYTES = 64 * 1024 * 1024
BATCH_CODES = {
    400: "invalid_batch invalid_batch_size unknown_parameter invalid_json json_too_deep "
    "invalid_idempotency_key invalid_cancel_after",
    409: "idempotency_key_in_use",
    413: "request_too_large",
}


@router.post(
    "/uploads",
    status_code=201,
    response_model=Image,
    responses=errors(413, 415, 429, codes=UPLOAD_CODES),
    openapi_extra=openapi.request_body(("multipart/form-data", "UploadForm")),
)
async def upload(
    request: Request,
    db: DB,
    tenant: Tenant,
    uploads: Uploads,
    content_type: ContentType = "",
) -> Image:
    """Store one image (field `file`); answers its id (`img_<sha256>`) for `image_ids`/`mask_id`."""
    settings = db.settings
    limits = Limits(
        file_bytes={},
        default_file_bytes=settings.max_image_bytes,
        field_bytes=1024,
        total_bytes=settings.max_image_bytes + 64 * 1024,
        max_parts=2,
    )
    with uploads.hold(tenant):
        form = await read_form(content_type, request.stream(), limits)
    try:
        if set(form.fields) or set(form.files) - {"file"}:
            extra = sorted({*form.fields, *form.files} - {"file"})[0]
            raise InvalidRequest("unknown_parameter", f"unknown parameter {extra!r}", extra)
        files = form.files.get("file", [])
        if len(files) != 1:
            raise InvalidRequest("image_missing", "send exactly one image as the field `file`", "file")
        data = files[0].read()
    finally:
        form.close()
    checked = await anyio.to_thread.run_sync(
        lambda: pillow.check_image(
            data, param="file", max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
        )
    )
    meta = await anyio.to_thread.run_sync(images.put, db, tenant, checked, settings.source_retention_seconds)
    return Image(**meta)


def _item(
    db: Any,
    models: Any,
    tenant: str,
    index: int,
    raw: Any,
    defaults: dict[str, Any],
    deadline: float | None,
    availability: Availability,
) -> dict[str, Any]:
    """One item's answer. Every failure stays in the item: earlier items may be committed."""
    try:
        if not isinstance(raw, dict):
            raise InvalidRequest("invalid_item", "each item is a JSON object")
        fields, image_ids, mask_id = inputs.split_json_edit({**defaults, **raw})
        options = parse_options(fields)
        sources, mask = inputs.sources_from_ids(db, tenant, image_ids, mask_id)
        edit = (options, sources, mask)
        answer = admit(db, models, tenant, edit, cancel_after_s=deadline, availability=availability)
    except StorageError as exc:
        return _unavailable(index, f"cannot store this item right now ({exc})")
    except EditqError as exc:
        logs.event(
            log, "request.refused", status=exc.status, code=exc.code, route="/v1/edits/batch", item=index
        )
        return {"index": index, "status": exc.status, "error": exc.body()["error"]}
    return {"index": index, "status": answer.status, "job": answer.body}


def _unavailable(index: int, message: str) -> dict[str, Any]:
    error = Unavailable("storage_unavailable", message)
    return {"index": index, "status": error.status, "error": error.body()["error"]}


def _items(
    db: Any, models: Any, tenant: str, items: list[Any], defaults: dict[str, Any], deadline: float | None
) -> list[dict[str, Any]]:
    """Each item in turn; once storage is unavailable, the rest are not tried (each would wait
    for its own timeout) and answer 503 too."""
    results: list[dict[str, Any]] = []
    availability = model_store.availability(db)
    for index, raw in enumerate(items):
        if results and results[-1]["status"] == 503:
            results.append(_unavailable(index, "not tried: storage became unavailable earlier in the batch"))
            continue
        results.append(_item(db, models, tenant, index, raw, defaults, deadline, availability))
    return results


@router.post(
    "/edits/batch",
    response_model=BatchAnswer,
    responses=errors(409, 413, 422, codes=BATCH_CODES),
    openapi_extra=openapi.request_body(("application/json", "BatchBody")),
)
async def batch(
    request: Request,
    db: DB,
    models: Models,
    tenant: Tenant,
    idempotency_key: IdempotencyKey = None,
    cancel_after: CancelAfter = None,
) -> JSONResponse:
    """Up to `EDITQ_MAX_BATCH_ITEMS` jobs referencing uploads; each item answers on its own."""
    settings = db.settings
    key = idempotency.parse_key(idempotency_key)
    deadline = inputs.cancel_after(cancel_after)
    body = await inputs.read_json(request, MAX_BATCH_BYTES)
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise InvalidRequest("invalid_batch", 'send {"items": [...]} with one object per job', "items")
    extra = set(body) - {"items", "defaults"}
    if extra:
        raise InvalidRequest("unknown_parameter", f"unknown parameter {sorted(extra)[0]!r}", sorted(extra)[0])
    items, defaults = body["items"], body.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InvalidRequest("invalid_batch", "defaults is an object of edit fields", "defaults")
    if not items or len(items) > settings.max_batch_items:
        raise InvalidRequest(
            "invalid_batch_size", f"a batch has 1 to {settings.max_batch_items} items", "items"
        )
    fingerprint = hashlib.sha256(
        json.dumps({"body": body, "cancel_after": deadline}, sort_keys=True).encode()
    ).hexdigest()
    if key is not None:
        replay = await anyio.to_thread.run_sync(idempotency.begin, db, tenant, key, fingerprint)
        if replay is not None:
            return JSONResponse(
                replay.body, status_code=replay.status, headers={"Idempotent-Replayed": "true"}
            )

    try:
        results = await anyio.to_thread.run_sync(_items, db, models, tenant, items, defaults, deadline)
    except Exception:
        if key is not None:
            await anyio.to_thread.run_sync(idempotency.abort, db, tenant, key, fingerprint)
        raise
    accepted = sum(1 for r in results if r["status"] < 300)
    answer = {"object": "batch", "accepted": accepted, "refused": len(results) - accepted, "items": results}
    if key is not None:
        try:
            await anyio.to_thread.run_sync(
                idempotency.store, db, tenant, key, 200, answer, settings.idempotency_ttl_seconds
            )
        except StorageError as exc:
            # the items are committed: answer them; the in-flight key lapses on its own
            log.warning("batch answer not stored for its Idempotency-Key: %s", exc)
    return JSONResponse(answer, status_code=200)
