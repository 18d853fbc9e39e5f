"""What `/openapi.json` says about the bodies the routes read by hand.

Routes declare their request bodies with `request_body(...)` (`openapi_extra`), naming schemas
that `install` adds to the document from the live catalogue and settings: the enums and limits
shown are the ones the API enforces (models, qualities, formats, backgrounds, `n`, prompt length,
images per job, batch size); the admin API's bodies are its pydantic models (`body_model`). The
bearer-key security schemes come from `deps.tenant` and `admin.admin`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from editq.api.compat_inputs import MAX_JSON_BYTES
from editq.api.inputs import MAX_IMAGES
from editq.catalogue import Catalogue
from editq.options import EVENTS, MAX_METADATA_KEYS, PRIORITIES, STRENGTHS
from editq.settings import Settings


def header(description: str, pattern: str, example: str, max_length: int = 255) -> dict[str, Any]:
    """`Header(**header(...))`: documents the value's form without FastAPI validating it, so a
    bad value gets its own error code from the route."""
    return {
        "description": description,
        "examples": [example],
        "json_schema_extra": {"pattern": pattern, "maxLength": max_length},
    }


IDEMPOTENCY_KEY = header(
    "Up to 255 printable characters. The same key with the same body answers the first answer "
    "again (`Idempotent-Replayed: true`) for `EDITQ_IDEMPOTENCY_TTL`; with another body, 422 "
    "`idempotency_key_reused`; while the first is in flight, 409 `idempotency_key_in_use`.",
    "^[!-~]([ -~]*[!-~])?$",
    "order-1234-edit",
)
CANCEL_AFTER = header(
    "Seconds (`90`) or a duration (`1h30m`, `45s`, `2d`), more than 0 and at most 30 days: a job "
    "not started by then ends `expired`, free.",
    "^([0-9]{1,7}(\\.[0-9]{1,3})?|([0-9]{1,2}d)?([0-9]{1,3}h)?([0-9]{1,5}m)?([0-9]{1,7}s)?)$",
    "1h30m",
)
PREFER = header(
    "`wait=N`: answer 200 with the finished job if it ends within N seconds (at most "
    "`EDITQ_MAX_WAIT_SECONDS`), else 202; the answer says `Preference-Applied`.",
    "^wait=[0-9]{1,3}$",
    "wait=30",
)
IMAGE_TYPES = "image/png, image/jpeg, image/webp, image/gif, image/bmp, image/tiff"
UPLOAD_ID = {"type": "string", "pattern": "^img_[0-9a-f]{64}$", "examples": ["img_" + "a6e7" * 16]}
BINARY = {"type": "string", "format": "binary"}
PROMPT_EXAMPLE = "make it nighttime, keep the same person"


#: JSON bodies read by hand into pydantic models (the admin API's), by schema name.
BODY_MODELS: dict[str, type[BaseModel]] = {}
REF_TEMPLATE = "#/components/schemas/{model}"


def body_model(model: type[BaseModel]) -> str:
    """Register `model` as a request body's schema; its name, for `request_body`."""
    BODY_MODELS[model.__name__] = model
    return model.__name__


def model_schemas() -> dict[str, dict[str, Any]]:
    """The registered bodies' schemas and the models they refer to, as components."""
    found: dict[str, dict[str, Any]] = {}
    for name, model in BODY_MODELS.items():
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        found.update(schema.pop("$defs", {}))
        found[name] = schema
    return found


def request_body(*bodies: tuple[str, str], description: str | None = None) -> dict[str, Any]:
    """`openapi_extra` for a route reading its body by hand: (media type, schema name) pairs."""
    content: dict[str, Any] = {}
    for media, name in bodies:
        content[media] = {"schema": {"$ref": f"#/components/schemas/{name}"}}
        if media == "multipart/form-data":
            content[media]["encoding"] = {
                part: {"contentType": "image/png" if part == "mask" else IMAGE_TYPES}
                for part in FILE_PARTS.get(name, ())
            }
        if name in EXAMPLES:
            content[media]["example"] = EXAMPLES[name]
    body: dict[str, Any] = {"required": True, "content": content}
    if description:
        body["description"] = description
    return {"requestBody": body}


FILE_PARTS = {
    "EditForm": ("image", "mask"),
    "OpenAIEditForm": ("image", "image[]", "mask"),
    "UploadForm": ("file",),
}
EXAMPLES: dict[str, Any] = {
    "EditJson": {"prompt": PROMPT_EXAMPLE, "image_ids": UPLOAD_ID["examples"], "strength": "low"},
    "BatchBody": {
        "defaults": {"prompt": "vintage film", "quality": "low"},
        "items": [{"image_ids": UPLOAD_ID["examples"]}, {"image_ids": UPLOAD_ID["examples"], "n": 2}],
    },
    "EndpointEnable": {"url": "https://hooks.example.com/editq"},
    "OpenAIEditJson": {
        "model": "gpt-image-1-mini",
        "prompt": PROMPT_EXAMPLE,
        "images": [
            {"image_url": "data:image/png;base64,iVBORw0KGgo..."},
            {"file_id": UPLOAD_ID["examples"][0]},
        ],
    },
}


def _union(groups: list[tuple[str, ...]]) -> list[str]:
    return list(dict.fromkeys(value for group in groups for value in group))


def _options(models: Catalogue, settings: Settings) -> dict[str, dict[str, Any]]:
    """The option fields every edit body shares, with the catalogue's values."""
    every = list(models.models.values())
    names = sorted({*models.models, *models.snapshots, *settings.model_aliases})
    return {
        "prompt": {
            "type": "string",
            "minLength": 1,
            "maxLength": max(m.prompt_max_chars for m in every),
            "description": "What to change (not only spaces); at most the model's limit, strength "
            "instruction included",
            "examples": [PROMPT_EXAMPLE],
        },
        "model": {
            "type": "string",
            "enum": names,
            "description": f"A catalogued model, snapshot or alias (default: the default chain, "
            f"{models.default} then its successors); retired ones are refused with `model_retired`",
        },
        "n": {"type": "integer", "minimum": 1, "maximum": max(m.max_n for m in every), "default": 1},
        "size": {
            "type": "string",
            "pattern": "^(auto|[0-9]{1,5}x[0-9]{1,5})$",
            "description": "; ".join(
                f"{m.name}: {', '.join(m.sizes)}" + (" or WxH within its bounds" if m.arbitrary_sizes else "")
                for m in every
            ),
            "examples": ["1024x1024", "auto"],
        },
        "quality": {"type": "string", "enum": _union([m.qualities for m in every])},
        "output_format": {"type": "string", "enum": [*_union([m.output_formats for m in every]), "jpg"]},
        "output_compression": {
            "type": "integer",
            "minimum": 0,
            "maximum": 100,
            "description": "jpeg and webp only",
        },
        "background": {
            "type": "string",
            "enum": _union([m.backgrounds for m in every]),
            "description": "`transparent` needs png or webp",
        },
        "input_fidelity": {
            "type": "string",
            "enum": ["low", "high"],
            "description": "on models that take it",
        },
        "user": {"type": "string", "maxLength": 256, "description": "end-user id passed to the provider"},
    }


def _editq_fields(*, form: bool) -> dict[str, dict[str, Any]]:
    """editq's own fields; multipart sends every value as text."""
    events = ", ".join(f"`{e}`" for e in EVENTS)
    return {
        "aspect_ratio": {
            "type": "string",
            "pattern": "^(match_input|[0-9]{1,3}[:/][0-9]{1,3})$",
            "description": "`match_input` or W:H from 1:3 to 3:1 (not with size)",
            "examples": ["16:9"],
        },
        "output_size": {"type": "string", "enum": ["model", "input"]},
        "strength": {"type": "string", "enum": list(STRENGTHS), "description": "not with input_fidelity"},
        "webhook_url": {"type": "string", "format": "uri", "examples": ["https://hooks.example.com/editq"]},
        "webhook_events": {"type": "string", "description": f"comma-separated among {events}"}
        if form
        else {"type": "array", "items": {"type": "string", "enum": list(EVENTS)}, "minItems": 1},
        "priority": {"type": "string", "enum": list(PRIORITIES), "default": "interactive"},
        "max_cost_usd": {
            "type": "string",
            "pattern": "^[0-9]{1,12}(\\.[0-9]{1,12})?$",
            "description": "refuse (402 `max_cost_exceeded`) if the estimate is above it",
            "examples": ["0.25"],
        },
        "metadata": {"type": "string", "description": "a JSON object: at most 16 keys and 4 KB"}
        if form
        else {"type": "object", "maxProperties": MAX_METADATA_KEYS, "description": "at most 4 KB"},
        "reuse": {"type": "boolean", "default": True, "description": "false: never reuse earlier outputs"},
    }


def _form(properties: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A multipart form's fields, each without a default or an example shown empty: Swagger UI
    fills every field of a form with a sample and sends it, and an empty field is not sent, so
    `/docs` starts from a form that works (a sample of every option would combine a size with
    an aspect ratio, a webhook nobody asked for and a compression for a PNG)."""
    blank = {}
    for name, field in properties.items():
        is_file = field.get("format") == "binary" or field.get("items", {}).get("format") == "binary"
        if is_file or "default" in field or name == "prompt":
            blank[name] = field
        else:
            blank[name] = {**field, "examples": [""]}
    return blank


def _object(properties: dict[str, Any], required: list[str], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def request_schemas(models: Catalogue, settings: Settings) -> dict[str, dict[str, Any]]:
    """Every request body's schema, by the names `request_body` refers to."""
    options = _options(models, settings)
    accepted = (
        f"at most {settings.max_image_bytes} bytes: PNG, JPEG, WebP (GIF, BMP and TIFF stills are "
        "converted to PNG)"
    )
    image_files = {
        "type": "array",
        "items": BINARY,
        "minItems": 1,
        "maxItems": MAX_IMAGES,
        "description": f"1 to {MAX_IMAGES} files, each {accepted}; `image[]` is the same",
    }
    mask_file = {
        **BINARY,
        "description": f"A PNG with alpha, the first image's size, at most {settings.max_mask_bytes} "
        "bytes; fully transparent pixels are edited",
    }
    edit_fields = {**options, **_editq_fields(form=False)}
    image_ids = {"type": "array", "items": UPLOAD_ID, "minItems": 1, "maxItems": MAX_IMAGES}
    return {
        "EditForm": _object(
            _form({"image": image_files, "mask": mask_file, **options, **_editq_fields(form=True)}),
            ["image", "prompt"],
            "A submit with files (`image` may also be sent as `image[]`).",
        ),
        "EditJson": _object(
            {"image_ids": image_ids, "mask_id": UPLOAD_ID, **edit_fields},
            ["image_ids", "prompt"],
            "A submit referencing images stored with `POST /v1/uploads`.",
        ),
        "BatchItemFields": _object(
            {"image_ids": image_ids, "mask_id": UPLOAD_ID, **edit_fields},
            [],
            "An item of a batch, or the batch's defaults (each item is merged over them).",
        ),
        "BatchBody": _object(
            {
                "items": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/BatchItemFields"},
                    "minItems": 1,
                    "maxItems": settings.max_batch_items,
                },
                "defaults": {"$ref": "#/components/schemas/BatchItemFields"},
            },
            ["items"],
            "Jobs referencing uploads; each item answers on its own.",
        ),
        "UploadForm": _object(
            {"file": {**BINARY, "description": f"An image file, {accepted}"}},
            ["file"],
            "One image, stored once per tenant (content-addressed).",
        ),
        "EndpointEnable": _object(
            {"url": {"type": "string"}}, ["url"], "A webhook URL disabled after a 410."
        ),
        **_openai_schemas(options, image_files, mask_file),
    }


def _openai_schemas(
    options: dict[str, Any], image_files: dict[str, Any], mask_file: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """OpenAI's edit bodies, as `POST /v1/images/edits` takes them."""
    answer_fields: dict[str, dict[str, Any]] = {
        "stream": {"type": "boolean", "enum": [False], "description": "editq does not stream (true: 400)"},
        "partial_images": {"type": "integer", "minimum": 0, "maximum": 3, "description": "streaming only"},
        "response_format": {"type": "string", "enum": ["b64_json"]},
    }
    reference = {
        "type": "object",
        "description": "Exactly one of `image_url` (a base64 `data:` URL; editq fetches no other "
        "URL) and `file_id` (an editq upload id, from `POST /v1/uploads`).",
        "properties": {"image_url": {"type": "string", "pattern": "^data:"}, "file_id": UPLOAD_ID},
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
    }
    return {
        "OpenAIEditForm": _object(
            _form(
                {"image": image_files, "image[]": image_files, "mask": mask_file, **options, **answer_fields}
            ),
            ["image", "prompt"],
            "OpenAI's `CreateImageEditRequest` (the SDK sends a list of images as `image[]`).",
        ),
        "OpenAIImageRef": reference,
        "OpenAIEditJson": _object(
            {
                "images": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/OpenAIImageRef"},
                    "minItems": 1,
                    "maxItems": MAX_IMAGES,
                },
                "mask": {"$ref": "#/components/schemas/OpenAIImageRef"},
                **options,
                "moderation": {"type": "string", "enum": ["auto"]},
                **answer_fields,
            },
            ["images", "prompt"],
            f"OpenAI's `EditImageBodyJsonParam`; the whole body is at most {MAX_JSON_BYTES} bytes.",
        ),
    }


def install(app: FastAPI, models: Catalogue, settings: Settings) -> None:
    """Add the request bodies' schemas to the document FastAPI builds (once, on first request)."""
    build = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = build()
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in model_schemas().items():
                # a model also answered keeps FastAPI's schema, unless the body reads it otherwise
                if schemas.setdefault(name, schema) != schema:
                    raise RuntimeError(f"two schemas named {name} in /openapi.json")
            schemas.update(request_schemas(models, settings))
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
