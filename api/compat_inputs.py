"""Reading an OpenAI `images.edit` request into editq's options and checked sources.

The multipart form is OpenAI's (`image` or `image[]`, `mask`, `prompt`, `model`, `n`, `size`,
`quality`, `background`, `output_format`, `output_compression`, `input_fidelity`, `user`); the
JSON form takes `images` and `mask` as `{"image_url": "data:image/png;base64,..."}` or
`{"file_id": "img_..."}` (an editq upload). editq never fetches a URL for a client: any other
`image_url` is refused. Streaming is refused too. Nothing is stored here.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import anyio.to_thread
from fastapi import Request

from editq import images as pillow
from editq.api import inputs
from editq.api.guard import UploadSlots
from editq.api.multipart import Form
from editq.api.submit import Source
from editq.errors import InvalidRequest, PayloadTooLarge
from editq.options import OPENAI_ANSWER_FIELDS, OPENAI_OPTION_FIELDS, EditOptions, parse_options
from editq.settings import Settings
from editq.storage.backend import Backend

FIELDS = OPENAI_OPTION_FIELDS
ANSWER_FIELDS = OPENAI_ANSWER_FIELDS
#: Fields of the JSON form only.
JSON_FIELDS = ("images", "mask", "moderation")
#: JSON bodies are read whole into memory: images larger than this together go multipart.
MAX_JSON_BYTES = 64 * 1024 * 1024
_DATA_URL = re.compile(r"data:(?:[\w.+-]+/[\w.+-]+)?(?:;[\w.+-]+=[^;,]*)*;base64,", re.ASCII | re.IGNORECASE)


async def read(
    request: Request, db: Backend, tenant: str, content_type: str, uploads: UploadSlots
) -> tuple[EditOptions, list[Source], Source | None]:
    """The options and checked sources of an OpenAI edit body, multipart or JSON."""
    if content_type.startswith("multipart/form-data"):
        return await inputs.edit_from_form(request, db, tenant, content_type, uploads, options_from_form)
    if content_type.startswith("application/json"):
        with uploads.hold(tenant):
            body = await inputs.read_json(request, MAX_JSON_BYTES)
        options, images, mask = split_json(body)
        sources, mask_source = await anyio.to_thread.run_sync(sources_from_refs, db, tenant, images, mask)
        return options, sources, mask_source
    raise InvalidRequest(
        "unsupported_content_type", "send multipart/form-data or application/json", "Content-Type"
    )


def options_from_form(form: Form) -> EditOptions:
    inputs.check_form_files(form)
    _refuse_unknown(form.fields, (*FIELDS, *ANSWER_FIELDS))
    return _options(dict(form.fields))


def split_json(body: Any) -> tuple[EditOptions, Any, Any]:
    """A JSON edit: its options, its `images` and its `mask`."""
    if not isinstance(body, dict):
        raise InvalidRequest("invalid_json", "the body must be a JSON object")
    if "image" in body:
        raise InvalidRequest(
            "unknown_parameter",
            'JSON edits send images as "images": [{"image_url": "data:..."} or {"file_id": "img_..."}]',
            "image",
        )
    _refuse_unknown(body, (*FIELDS, *ANSWER_FIELDS, *JSON_FIELDS))
    moderation = _single(body, "moderation")
    if moderation not in (None, "auto"):
        code = "unsupported_moderation" if moderation == "low" else "invalid_parameter"
        raise InvalidRequest(code, "editq calls the model with moderation auto only", "moderation")
    return _options(body), body.get("images"), body.get("mask")


def _refuse_unknown(values: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InvalidRequest("unknown_parameter", f"unknown parameter {unknown[0]!r}", unknown[0])


def _single(values: dict[str, Any], name: str) -> Any:
    value = values.get(name)
    if isinstance(value, list) and name != "images":
        if len(value) != 1:
            raise InvalidRequest("duplicate_parameter", f"{name} was given more than once", name)
        return value[0]
    return value


def _options(values: dict[str, Any]) -> EditOptions:
    """editq options for OpenAI's fields: every call is a fresh edit (no reuse of earlier outputs)
    that runs now (interactive, whatever the tenant's default priority), as OpenAI's would."""
    _check_answer_fields(values)
    fields = {name: values[name] for name in FIELDS if values.get(name) is not None}
    return parse_options({**fields, "reuse": False, "priority": "interactive"})


def _check_answer_fields(values: dict[str, Any]) -> None:
    stream = _single(values, "stream")
    if stream in (True, "true", "True", "1"):
        raise InvalidRequest(
            "stream_unsupported",
            "editq does not stream image edits; call without stream (the answer comes when the edit ends)",
            "stream",
        )
    if stream not in (None, False, "false", "False", "0", ""):
        raise InvalidRequest("invalid_parameter", "stream must be true or false", "stream")
    partial = _single(values, "partial_images")
    if partial not in (None, "") and str(partial) not in ("0", "1", "2", "3"):
        raise InvalidRequest("invalid_parameter", "partial_images is 0 to 3", "partial_images")
    answer_format = _single(values, "response_format")
    if answer_format == "url":
        raise InvalidRequest(
            "unsupported_response_format",
            "editq answers b64_json (GPT image models have no url answers); the outputs are also at "
            "GET /v1/edits/{id}/outputs/{index} for the job named in the editq-job-id header",
            "response_format",
        )
    if answer_format not in (None, "", "b64_json"):
        raise InvalidRequest("invalid_parameter", "response_format must be b64_json", "response_format")


def sources_from_refs(db: Backend, tenant: str, images: Any, mask: Any) -> tuple[list[Source], Source | None]:
    """The JSON form's `images` and `mask` as checked sources (CPU: run in a worker thread)."""
    settings = db.settings
    if images is None or (isinstance(images, list) and not images):
        raise InvalidRequest("image_missing", "send at least one image in images", "images")
    if not isinstance(images, list):
        raise InvalidRequest("invalid_parameter", "images is a list of image references", "images")
    if len(images) > inputs.MAX_IMAGES:
        raise InvalidRequest("too_many_images", f"at most {inputs.MAX_IMAGES} images per job", "images")
    sources = [_source(db, tenant, item, f"images[{index}]") for index, item in enumerate(images)]
    if mask is None:
        return sources, None
    kind, value = _ref(mask, "mask")
    if kind == "file_id":
        return sources, inputs.stored_mask(db, tenant, value, "mask")
    checked = pillow.check_mask(
        data_url_bytes(value, "mask", settings.max_mask_bytes),
        first_image=sources[0].dims,
        max_bytes=settings.max_mask_bytes,
        max_pixels=settings.max_image_pixels,
    )
    return sources, Source.fresh(checked)


def _source(db: Backend, tenant: str, item: Any, param: str) -> Source:
    kind, value = _ref(item, param)
    if kind == "file_id":
        return inputs.stored_image(db, tenant, value, param)
    settings: Settings = db.settings
    checked = pillow.check_image(
        data_url_bytes(value, param, settings.max_image_bytes),
        param=param,
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
    )
    return Source.fresh(checked)


def _ref(item: Any, param: str) -> tuple[str, str]:
    """`("image_url", url)` or `("file_id", id)` from one of OpenAI's image references."""
    if not isinstance(item, dict) or len(item) != 1 or not set(item) <= {"image_url", "file_id"}:
        raise InvalidRequest(
            "invalid_parameter",
            f'{param} is {{"image_url": "data:..."}} or {{"file_id": "img_..."}}, exactly one of the two',
            param,
        )
    ((kind, value),) = item.items()
    if not isinstance(value, str):
        raise InvalidRequest("invalid_parameter", f"{param}.{kind} must be a string", param)
    return kind, value


def data_url_bytes(url: str, param: str, limit: int) -> bytes:
    """The bytes of a base64 `data:` URL, refused before decoding when it cannot fit `limit`."""
    if not url[:5].lower() == "data:":
        raise InvalidRequest(
            "image_url_not_supported",
            "editq takes image_url only as a data: URL (data:image/png;base64,...); it fetches no URL "
            "for clients: store the image with POST /v1/uploads and send its id as file_id",
            param,
        )
    match = _DATA_URL.match(url)
    if match is None:
        raise InvalidRequest("invalid_image_url", "image_url must be a base64 data: URL", param)
    payload = url[match.end() :]
    if len(payload) > 4 * ((limit + 2) // 3):
        what = "mask" if param == "mask" else "image"
        raise PayloadTooLarge(f"{what}_too_large", f"{param} is over the {limit} byte limit", param)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("invalid_image_url", f"{param} is not valid base64", param) from None
