"""Turning what a client sent (form parts, JSON, headers) into options and checked sources."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from fastapi import Request

from editq import images as pillow
from editq.api.guard import UploadSlots
from editq.api.multipart import Form, Limits, read_form
from editq.api.submit import Source
from editq.errors import InvalidRequest, PayloadTooLarge
from editq.options import EditOptions, json_depth, parse_options
from editq.settings import Settings
from editq.storage import images
from editq.storage.backend import Backend

MAX_IMAGES = 16
FILE_FIELDS = ("image", "image[]", "mask")
#: A prompt of 32000 characters is at most 128 KB of UTF-8.
FIELD_BYTES = 256 * 1024
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$", re.ASCII)
MAX_CANCEL_AFTER_S = 30 * 86400
#: Deepest JSON a request body may nest (an edit needs 3 levels, a batch 4).
MAX_JSON_DEPTH = 32
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def form_limits(settings: Settings) -> Limits:
    return Limits(
        file_bytes={"mask": settings.max_mask_bytes},
        default_file_bytes=settings.max_image_bytes,
        field_bytes=FIELD_BYTES,
        total_bytes=settings.max_request_bytes,
        max_parts=MAX_IMAGES + 1 + 40,
    )


def check_form_files(form: Form) -> None:
    """Files only under `image`, `image[]` and `mask`, and those never as text fields."""
    unknown = sorted(set(form.files) - set(FILE_FIELDS))
    if unknown:
        raise InvalidRequest("unknown_parameter", f"unknown file field {unknown[0]!r}", unknown[0])
    misplaced = sorted(set(form.fields) & set(FILE_FIELDS))
    if misplaced:
        raise InvalidRequest(
            "invalid_image", f"{misplaced[0]} must be sent as a file upload", misplaced[0].rstrip("[]")
        )


def options_from_form(form: Form) -> EditOptions:
    """The options of a multipart edit. An optional field sent empty counts as not sent, as
    browsers' forms (and `/docs`) send every field; an empty prompt is still refused."""
    check_form_files(form)
    return parse_options(
        {name: values for name, values in form.fields.items() if name == "prompt" or any(values)}
    )


def sources_from_form(form: Form, settings: Settings) -> tuple[list[Source], Source | None]:
    """Check every uploaded image and the mask with Pillow (CPU: run in a worker thread)."""
    uploads = form.files.get("image", []) + form.files.get("image[]", [])
    if not uploads:
        raise InvalidRequest("image_missing", "send at least one image file", "image")
    if len(uploads) > MAX_IMAGES:
        raise InvalidRequest("too_many_images", f"at most {MAX_IMAGES} images per job", "image")
    masks = form.files.get("mask", [])
    if len(masks) > 1:
        raise InvalidRequest("duplicate_parameter", "send one mask", "mask")
    sources = []
    for index, upload in enumerate(uploads):
        param = "image" if len(uploads) == 1 else f"image[{index}]"
        checked = pillow.check_image(
            upload.read(),
            param=param,
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
        )
        sources.append(Source.fresh(checked))
    mask = None
    if masks:
        checked_mask = pillow.check_mask(
            masks[0].read(),
            first_image=sources[0].dims,
            max_bytes=settings.max_mask_bytes,
            max_pixels=settings.max_image_pixels,
        )
        mask = Source.fresh(checked_mask)
    return sources, mask


def sources_from_ids(
    db: Backend, tenant: str, image_ids: Any, mask_id: Any
) -> tuple[list[Source], Source | None]:
    """Sources stored earlier with POST /v1/uploads; another tenant's ids do not exist here."""
    if not isinstance(image_ids, list) or not image_ids:
        raise InvalidRequest("image_missing", "image_ids must be a non-empty list", "image_ids")
    if len(image_ids) > MAX_IMAGES:
        raise InvalidRequest("too_many_images", f"at most {MAX_IMAGES} images per job", "image_ids")
    sources = [stored_image(db, tenant, ref, "image_ids") for ref in image_ids]
    mask = None if mask_id is None else stored_mask(db, tenant, mask_id, "mask_id")
    return sources, mask


def stored_image(db: Backend, tenant: str, ref: Any, param: str) -> Source:
    """An upload of this tenant (another tenant's ids do not exist here)."""
    meta = images.get(db, tenant, ref) if isinstance(ref, str) else None
    if meta is None:
        raise InvalidRequest("image_not_found", f"no uploaded image {ref!r}", param)
    return Source(meta)


def stored_mask(db: Backend, tenant: str, ref: Any, param: str) -> Source:
    """An upload of this tenant that can be a mask: a PNG with an alpha channel."""
    meta = images.get(db, tenant, ref) if isinstance(ref, str) else None
    if meta is None:
        raise InvalidRequest("image_not_found", f"no uploaded mask {ref!r}", param)
    if meta["content_type"] != "image/png":
        raise InvalidRequest("mask_not_png", "mask must be a PNG with an alpha channel", param)
    if not meta["has_alpha"]:
        raise InvalidRequest("mask_without_alpha", "mask has no alpha channel", param)
    return Source(meta)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """Strict JSON (no NaN or Infinity), at most `MAX_JSON_DEPTH` levels deep."""
    try:
        value = json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidRequest(
            "json_too_deep", f"the JSON body nests more than {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError:
        raise InvalidRequest("invalid_json", "the body is not valid JSON") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise InvalidRequest("json_too_deep", f"the JSON body nests more than {MAX_JSON_DEPTH} levels")
    return value


def split_json_edit(body: Any) -> tuple[dict[str, Any], Any, Any]:
    """A JSON edit: its option fields, its image_ids and its mask_id."""
    if not isinstance(body, dict):
        raise InvalidRequest("invalid_json", "the body must be a JSON object")
    fields = dict(body)
    image_ids = fields.pop("image_ids", None)
    mask_id = fields.pop("mask_id", None)
    for name in ("image", "image[]", "mask", "images"):
        if name in fields:
            raise InvalidRequest(
                "invalid_parameter",
                f"JSON edits reference uploads with image_ids and mask_id, not {name}",
                name,
            )
    return fields, image_ids, mask_id


def cancel_after(header: str | None) -> float | None:
    """`Cancel-After: 90` (seconds) or a duration like `1h30m`, `45s`, `2d`."""
    if header is None:
        return None
    text = header.strip().lower()
    seconds: float
    if _SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if not text or match is None or not any(match.groups()):
            raise InvalidRequest(
                "invalid_cancel_after",
                "Cancel-After is seconds or a duration like 5m or 1h30m",
                "Cancel-After",
            )
        d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = d * 86400 + h * 3600 + m * 60 + s
    if not 0 < seconds <= MAX_CANCEL_AFTER_S:
        raise InvalidRequest(
            "invalid_cancel_after", "Cancel-After must be more than 0 and at most 30 days", "Cancel-After"
        )
    return seconds


def prefer_wait(header: str | None, ceiling: int) -> int | None:
    """The seconds asked by `Prefer: wait=N` (RFC 7240), capped at `ceiling`."""
    if not header:
        return None
    for preference in header.split(","):
        for token in preference.split(";"):
            name, _, value = token.strip().partition("=")
            if name.strip().lower() == "wait":
                digits = value.strip().strip('"')
                if not (digits.isascii() and digits.isdigit()):
                    return None
                return max(0, min(ceiling, int(digits)))
    return None


#: Largest JSON body of a single edit.
MAX_JSON_BYTES = 1024 * 1024


async def read_json(request: Request, limit: int) -> Any:
    """A JSON body of at most `limit` bytes, read as it streams in."""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge("request_too_large", f"the JSON body is over {limit} bytes")
    return parse_json(bytes(body))


async def edit_from_form(
    request: Request,
    db: Backend,
    tenant: str,
    content_type: str,
    uploads: UploadSlots,
    options_of: Callable[[Form], EditOptions],
) -> tuple[EditOptions, list[Source], Source | None]:
    """A multipart edit, streamed in while holding one of the tenant's upload slots: its options
    (read by `options_of`) and its checked image files."""
    with uploads.hold(tenant):
        form = await read_form(content_type, request.stream(), form_limits(db.settings))
    try:
        options = options_of(form)
        sources, mask = await anyio.to_thread.run_sync(sources_from_form, form, db.settings)
    finally:
        form.close()
    return options, sources, mask


async def read_edit(
    request: Request, db: Backend, tenant: str, content_type: str, uploads: UploadSlots
) -> tuple[EditOptions, list[Source], Source | None]:
    """The options and checked sources of an edit body (multipart, holding one of the tenant's
    upload slots while it streams in, or JSON referencing uploads), without storing anything."""
    if content_type.startswith("multipart/form-data"):
        return await edit_from_form(request, db, tenant, content_type, uploads, options_from_form)
    if content_type.startswith("application/json"):
        fields, image_ids, mask_id = split_json_edit(await read_json(request, MAX_JSON_BYTES))
        options = parse_options(fields)
        sources, mask = await anyio.to_thread.run_sync(sources_from_ids, db, tenant, image_ids, mask_id)
        return options, sources, mask
    raise InvalidRequest(
        "unsupported_content_type", "send multipart/form-data or application/json", "Content-Type"
    )
