"""The simulator's HTTP app: `POST /v1/images/edits` as the OpenAI spec extract describes it,
and the Files and Batch APIs that run the same edits in batches (`batches`).

Same multipart fields, same response and error shapes, `usage` from the catalogue's token
table, rate limits with `x-ratelimit-*` headers, configurable latency and injected faults.
`/_sim/config` changes its behaviour at run time and `/_sim/stats` counts what it answered.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import math
import random
import re
import time
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field, fields, replace
from fractions import Fraction
from typing import Any

from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from editq import catalogue as catalogue_module
from editq import cost
from editq.catalogue import Catalogue, Model
from editq.clock import Clock
from editq.errors import InvalidRequest
from editq.ops.sim import effects
from editq.ops.sim.batches import ROUTES as BATCH_ROUTES
from editq.ops.sim.batches import BatchStore, Fetch
from editq.ops.sim.limits import Limits
from editq.options import OPENAI_ANSWER_FIELDS, OPENAI_OPTION_FIELDS, check_size

FIELDS = {"image", "image[]", "mask", *OPENAI_OPTION_FIELDS, *OPENAI_ANSWER_FIELDS}
#: gpt-image-2's simulated output tokens per pixel, as a multiple of the 1.x table: about what
#: the pages quoting its prices give for a 1024x1024 image (editq's estimate allows 2).
SIM_AREA_FACTOR = Fraction(17, 10)
MAX_MASK_BYTES = 4 * 1024 * 1024
MAX_IMAGE_BYTES = 50 * 1024 * 1024
CACHE_ENTRIES = 64


@dataclass
class SimConfig:
    """What the simulator does; every field can be changed through POST /_sim/config."""

    rpm: float | None = None
    ipm: float | None = None
    latency_min: float = 0.0
    latency_max: float = 0.0
    fail_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 600.0
    quota_exhausted: bool = False
    api_key: str | None = None
    #: `all`: request and image rate headers; `requests`: only the documented request ones;
    #: `none`: no rate headers at all.
    rate_headers: str = "all"
    start_full: bool = True
    seed: int = 7
    moderation_words: tuple[str, ...] = ("[moderation]",)
    #: Models served (catalogue names); None: every catalogued model not retired at its clock.
    models: tuple[str, ...] | None = None
    #: Seconds added to the simulator's clock, which decides what is retired.
    clock_offset: float = 0.0
    #: Share of the input text tokens reported as `cached_tokens`.
    cached_share: float = 0.0
    #: Seconds a batch stays in progress before its results are written.
    batch_delay: float = 0.5
    #: The next this many batches fail validation.
    batch_fail_next: int = 0
    #: The next this many batches expire, after answering `batch_expire_after` of their lines.
    batch_expire_next: int = 0
    batch_expire_after: int = 0
    #: Share of batch lines answered 500 (in the error file).
    batch_line_fail_rate: float = 0.0


@dataclass
class Stats:
    requests: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    images: int = 0
    by_model: Counter[str] = field(default_factory=Counter)
    timeline: list[tuple[float, int, int]] = field(default_factory=list)

    def record(self, status: int, images: int = 0, model: str = "") -> None:
        self.requests += 1
        self.by_status[str(status)] += 1
        self.images += images
        if model:
            self.by_model[model] += 1
        if len(self.timeline) < 500_000:
            self.timeline.append((time.time(), status, images))


class NotServed(Exception):
    """The account does not serve this model (404 model_not_found)."""


def _error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(_error_body(message, kind, param, code), status_code=status, headers=headers)


def _error_body(
    message: str, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class Simulator:
    def __init__(self, config: SimConfig, catalogue: Catalogue) -> None:
        self.config = config
        self.catalogue = catalogue
        self.limits = Limits(config.rpm, config.ipm, start_full=config.start_full)
        self.stats = Stats()
        self.rng = random.Random(config.seed)
        self.cache: OrderedDict[str, bytes] = OrderedDict()
        self.batch_store = BatchStore(lambda body, fetch: edit_json(self, body, fetch), config)

    def reconfigure(self, changes: dict[str, Any]) -> None:
        known = {f.name for f in fields(SimConfig)}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown setting {key!r}")
            tupled = key in ("moderation_words", "models") and value is not None
            setattr(self.config, key, tuple(value) if tupled else value)
        if {"rpm", "ipm", "start_full"} & set(changes):
            self.limits = Limits(self.config.rpm, self.config.ipm, start_full=self.config.start_full)
        if "seed" in changes:
            self.rng = random.Random(self.config.seed)

    def serves(self, model: Model) -> bool:
        if self.config.models is not None:
            return model.name in self.config.models
        return not model.retired(Clock(self.config.clock_offset).today())

    def rate_headers(self) -> dict[str, str]:
        mode = self.config.rate_headers
        if mode == "none":
            return {}
        return self.limits.headers(include_images=mode == "all")


#: Most simulated accounts one simulator serves under `/a/{account}/`.
MAX_ACCOUNTS = 64
_ACCOUNT = re.compile(r"[A-Za-z0-9_-]{1,32}")


class UnknownAccount(Exception):
    """The path names an account the simulator cannot open."""


def _sim(request: Request) -> Simulator:
    """The account the path names (`/a/{account}/v1/...`: each with its own limits, faults and
    stats, opened on first use with the simulator's startup settings), or the default one."""
    base: Simulator = request.app.state.sim
    name = request.path_params.get("account")
    if name is None:
        return base
    accounts: dict[str, Simulator] = request.app.state.accounts
    if name not in accounts:
        if not _ACCOUNT.fullmatch(name) or len(accounts) >= MAX_ACCOUNTS:
            raise UnknownAccount(name)
        accounts[name] = Simulator(replace(request.app.state.startup), base.catalogue)
    return accounts[name]


def _model(sim: Simulator, name: str) -> Model:
    base = sim.catalogue.snapshots.get(name, name)
    model = sim.catalogue.models.get(base)
    if model is None:
        raise InvalidRequest("model_not_found", f"The model '{name}' does not exist.", "model")
    return model


async def _read_file(upload: UploadFile, param: str, limit: int) -> bytes:
    data = await upload.read()
    if len(data) > limit:
        raise InvalidRequest("invalid_image", f"'{param}' is too large: must be under {limit} bytes.", param)
    return data


def _open(data: bytes, param: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=("PNG", "JPEG", "WEBP"))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidRequest(
            "invalid_image_format",
            f"Invalid image file or mode for '{param}'. Supported: png, jpeg, webp.",
            param,
        ) from None
    return image


def _int_field(form: Any, name: str, default: int | None) -> int | None:
    value = form.get(name)
    if value is None or value == "":
        return default
    try:
        return int(str(value))
    except ValueError:
        raise InvalidRequest(
            "invalid_value", f"Invalid type for '{name}': expected an integer.", name
        ) from None


def _resolve_size(model: Model, size: str, first: tuple[int, int]) -> tuple[int, int]:
    if size != "auto":
        width, height = (int(p) for p in size.split("x"))
        return width, height
    ratio = first[0] / first[1]
    if ratio > 1.2:
        return 1536, 1024
    if ratio < 1 / 1.2:
        return 1024, 1536
    return 1024, 1024


def usage_for(
    model: Model,
    prompt: str,
    images: list[tuple[int, int]],
    fidelity: str | None,
    quality: str,
    size: str,
    n: int,
    cached_share: float = 0.0,
) -> dict[str, Any]:
    """What the simulator bills: the documented formulas, never above editq's estimate. Models
    with free-form sizes bill output tokens by area, at SIM_AREA_FACTOR times the 1.x table."""
    text = math.ceil(len(prompt.encode()) / 4) + model.extra_text_tokens_per_image * len(images)
    billed_fidelity = model.input_fidelity_billed or fidelity
    image_in = sum(cost.image_input_tokens(w, h, billed_fidelity) for w, h in images)
    if model.output_tokens_area_factor is not None:
        out = cost.area_tokens(model, quality, size, SIM_AREA_FACTOR) * n
    else:
        out = cost.output_tokens(model, quality, size) * n
    usage: dict[str, Any] = {
        "input_tokens": text + image_in,
        "output_tokens": out,
        "total_tokens": text + image_in + out,
        "input_tokens_details": {"text_tokens": text, "image_tokens": image_in},
    }
    if cached_share > 0:
        usage["input_tokens_details"]["cached_tokens"] = math.floor(text * min(1.0, cached_share))
    if model.prices.text_output is not None:
        usage["output_tokens_details"] = {"image_tokens": out, "text_tokens": 0}
    return usage


def _refused(sim: Simulator, request: Request) -> Response | None:
    """401 unless the request carries the configured key (when one is configured)."""
    key = sim.config.api_key
    if key is not None and request.headers.get("authorization", "") != f"Bearer {key}":
        sim.stats.record(401)
        return _error(401, "Incorrect API key provided.", code="invalid_api_key")
    return None


async def edits(request: Request) -> Response:
    sim = _sim(request)
    refused = _refused(sim, request)
    if refused is not None:
        return refused
    try:
        async with request.form(max_files=20, max_fields=40, max_part_size=256 * 1024) as form:
            return await _edit(sim, form)
    except NotServed as exc:
        sim.stats.record(404)
        return _error(
            404,
            f"The model '{exc}' does not exist or you do not have access to it.",
            code="model_not_found",
        )
    except InvalidRequest as exc:
        sim.stats.record(400)
        return _error(400, exc.message, param=exc.param, code=exc.code)


@dataclass(frozen=True)
class _EditRequest:
    """The form's fields once checked against the model, with the spec's defaults filled in."""

    model: Model
    prompt: str
    n: int
    size: str
    quality: str
    output_format: str
    background: str
    compression: int | None
    fidelity: str | None


async def _edit(sim: Simulator, form: Any) -> Response:
    uploads = _checked_uploads(form)
    request = _checked_request(sim, form)
    datas, images, mask_image = await _read_images(form, uploads)
    refusal = _quota_or_rate_refusal(sim, request.n)
    if refusal is not None:
        return refusal
    headers = sim.rate_headers()
    failure = await _injected_failure(sim, request.prompt, headers)
    if failure is not None:
        return failure
    return await _edited(sim, request, datas, images, mask_image, headers)


#: Fields of the JSON edit body (`EditImageBodyJsonParam`): images and mask by reference, and
#: `moderation`, which only the JSON body takes.
JSON_FIELDS = (FIELDS - {"image", "image[]", "response_format"}) | {"images", "moderation"}


async def edit_json(sim: Simulator, body: dict[str, Any], fetch: Fetch) -> tuple[int, dict[str, Any]]:
    """One edit from its JSON body, as a Batch API line carries it: the status and the answer's
    body, with the same edits and usage as the multipart endpoint (no rate limit: batches run in
    a pool of their own)."""
    try:
        refs = _json_refs(body)
        request = _checked_request(sim, body)
        datas = [await fetch(ref, "images") for ref in refs]
        mask = await fetch(body["mask"], "mask") if body.get("mask") is not None else None
        datas, images, mask_image = opened(datas, mask)
    except NotServed as exc:
        message = f"The model '{exc}' does not exist or you do not have access to it."
        return 404, _error_body(message, code="model_not_found")
    except InvalidRequest as exc:
        return 400, _error_body(exc.message, param=exc.param, code=exc.code)
    if any(word in request.prompt.lower() for word in sim.config.moderation_words):
        message = "Your request was rejected by the safety system. safety_violations=[violence]."
        return 400, _error_body(message, "image_generation_user_error", code="moderation_blocked")
    if sim.rng.random() < sim.config.batch_line_fail_rate:
        return 500, _error_body("The server had an error processing your request.", "server_error")
    return 200, await rendered(sim, request, datas, images, mask_image)


def _json_refs(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The body's image references, checked; and its fields."""
    unknown = sorted(set(body) - JSON_FIELDS)
    if unknown:
        raise InvalidRequest("unknown_parameter", f"Unknown parameter: '{unknown[0]}'.", unknown[0])
    if body.get("stream"):
        raise InvalidRequest(
            "unsupported_value", "The simulator does not stream; set stream=false.", "stream"
        )
    refs = body.get("images")
    if not isinstance(refs, list) or not 1 <= len(refs) <= 16:
        raise InvalidRequest("invalid_value", "Invalid 'images': 1 to 16 image references.", "images")
    for ref in [*refs, *([body["mask"]] if body.get("mask") is not None else [])]:
        if not isinstance(ref, dict) or len(ref) != 1 or not set(ref) <= {"file_id", "image_url"}:
            raise InvalidRequest(
                "invalid_value", "An image reference has exactly one of file_id or image_url.", "images"
            )
    return refs


def _checked_uploads(form: Any) -> list[UploadFile]:
    unknown = sorted(set(form.keys()) - FIELDS)
    if unknown:
        raise InvalidRequest("unknown_parameter", f"Unknown parameter: '{unknown[0]}'.", unknown[0])
    uploads = [f for key in ("image", "image[]") for f in form.getlist(key) if isinstance(f, UploadFile)]
    if not uploads:
        raise InvalidRequest("missing_required_parameter", "Missing required parameter: 'image'.", "image")
    if len(uploads) > 16:
        raise InvalidRequest("invalid_value", "Too many images: at most 16.", "image")
    return uploads


def _checked_request(sim: Simulator, form: Any) -> _EditRequest:
    prompt = form.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise InvalidRequest("missing_required_parameter", "Missing required parameter: 'prompt'.", "prompt")
    model_name = str(form.get("model") or "gpt-image-1.5")
    model = _model(sim, model_name)
    if not sim.serves(model):
        raise NotServed(model_name)
    if len(prompt) > model.prompt_max_chars:
        raise InvalidRequest(
            "string_above_max_length",
            f"Invalid 'prompt': string too long. Expected at most {model.prompt_max_chars} characters.",
            "prompt",
        )
    _check_unsupported(form)
    n = _checked_n(model, form)
    size = _checked_size(model, form)
    quality = _checked_choice(form, "quality", "auto", model.qualities)
    output_format = _checked_output_format(model, form)
    background = _checked_background(model, form, output_format)
    compression = _checked_compression(form, output_format)
    fidelity = _checked_fidelity(model, form)
    return _EditRequest(model, prompt, n, size, quality, output_format, background, compression, fidelity)


def _check_unsupported(form: Any) -> None:
    if form.get("stream") in ("true", "True", "1"):
        raise InvalidRequest(
            "unsupported_value", "The simulator does not stream; set stream=false.", "stream"
        )
    if form.get("response_format"):
        raise InvalidRequest(
            "unsupported_parameter", "'response_format' is only supported for dall-e-2.", "response_format"
        )


def _checked_n(model: Model, form: Any) -> int:
    n = _int_field(form, "n", 1) or 1
    if not 1 <= n <= model.max_n:
        raise InvalidRequest(
            "integer_out_of_range", f"Invalid 'n': must be between 1 and {model.max_n}.", "n"
        )
    return n


def _checked_size(model: Model, form: Any) -> str:
    size = str(form.get("size") or "1024x1024")
    try:
        check_size(model, size)
    except InvalidRequest as exc:
        raise InvalidRequest("invalid_value", f"Invalid 'size': {exc.message}", "size") from None
    return size


def _checked_choice(form: Any, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = str(form.get(name) or default)
    if value not in allowed:
        raise InvalidRequest("invalid_value", f"Invalid '{name}': must be one of {', '.join(allowed)}.", name)
    return value


def _checked_output_format(model: Model, form: Any) -> str:
    return _checked_choice(form, "output_format", "png", model.output_formats)


def _checked_background(model: Model, form: Any, output_format: str) -> str:
    background = str(form.get("background") or "auto")
    if background not in model.backgrounds:
        raise InvalidRequest("invalid_value", "Invalid 'background'.", "background")
    if background == "transparent" and output_format not in ("png", "webp"):
        raise InvalidRequest(
            "invalid_value", "Transparent background requires output_format png or webp.", "background"
        )
    return background


def _checked_compression(form: Any, output_format: str) -> int | None:
    compression = _int_field(form, "output_compression", None)
    if compression is not None and (output_format == "png" or not 0 <= compression <= 100):
        raise InvalidRequest(
            "invalid_value", "'output_compression' is 0-100 and only for jpeg or webp.", "output_compression"
        )
    return compression


def _checked_fidelity(model: Model, form: Any) -> str | None:
    fidelity = form.get("input_fidelity") or None
    if fidelity is None:
        return None
    if not model.input_fidelity:
        raise InvalidRequest(
            "unsupported_parameter",
            f"'input_fidelity' is not supported for {model.name}.",
            "input_fidelity",
        )
    if fidelity not in ("low", "high"):
        raise InvalidRequest("invalid_value", "Invalid 'input_fidelity': low or high.", "input_fidelity")
    return str(fidelity)


async def _read_images(
    form: Any, uploads: list[UploadFile]
) -> tuple[list[bytes], list[Image.Image], Image.Image | None]:
    """The uploaded images and mask, opened; `datas` ends with the mask's bytes when there is one."""
    datas = [await _read_file(u, "image", MAX_IMAGE_BYTES) for u in uploads]
    mask_upload = form.get("mask")
    mask_data = None
    if isinstance(mask_upload, UploadFile):
        mask_data = await _read_file(mask_upload, "mask", MAX_MASK_BYTES)
    return opened(datas, mask_data)


def opened(
    datas: list[bytes], mask_data: bytes | None
) -> tuple[list[bytes], list[Image.Image], Image.Image | None]:
    """The images and the mask opened and checked; `datas` ends with the mask's bytes when there
    is one."""
    images = [_open(d, "image") for d in datas]
    if mask_data is None:
        return datas, images, None
    mask_image = _open(mask_data, "mask")
    if mask_image.format != "PNG" or (
        mask_image.mode not in ("RGBA", "LA") and "transparency" not in mask_image.info
    ):
        raise InvalidRequest(
            "invalid_image_format", "Invalid mask: must be a PNG with an alpha channel.", "mask"
        )
    if mask_image.size != images[0].size:
        raise InvalidRequest("invalid_value", "Invalid mask: must have the same dimensions as image.", "mask")
    return [*datas, mask_data], images, mask_image


def _quota_or_rate_refusal(sim: Simulator, n: int) -> Response | None:
    if sim.config.quota_exhausted:
        sim.stats.record(429)
        return _error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            kind="insufficient_quota",
            code="insufficient_quota",
        )
    wait = sim.limits.take(n)
    if wait <= 0:
        return None
    sim.stats.record(429)
    headers = {
        **sim.rate_headers(),
        "retry-after": str(max(1, math.ceil(wait))),
        "retry-after-ms": str(math.ceil(wait * 1000)),
    }
    return _error(
        429,
        f"Rate limit reached for images per minute. Please try again in {wait:.3f}s.",
        kind="requests",
        code="rate_limit_exceeded",
        headers=headers,
    )


async def _injected_failure(sim: Simulator, prompt: str, headers: dict[str, str]) -> Response | None:
    """Waits the configured latency, then answers a hang, a server error or a moderation block
    when the dice or the prompt say so."""
    config = sim.config
    latency = sim.rng.uniform(config.latency_min, max(config.latency_min, config.latency_max))
    roll = sim.rng.random()
    if roll < config.hang_rate:
        await asyncio.sleep(config.hang_seconds)
        sim.stats.record(500)
        return _error(
            500, "The server had an error processing your request.", kind="server_error", headers=headers
        )
    if latency:
        await asyncio.sleep(latency)
    if roll < config.hang_rate + config.fail_rate:
        sim.stats.record(500)
        return _error(
            500,
            "The server had an error processing your request. Sorry about that!",
            kind="server_error",
            headers=headers,
        )
    if any(word in prompt.lower() for word in config.moderation_words):
        sim.stats.record(400)
        return _error(
            400,
            "Your request was rejected by the safety system. safety_violations=[violence].",
            kind="image_generation_user_error",
            code="moderation_blocked",
            headers=headers,
        )
    return None


async def _edited(
    sim: Simulator,
    request: _EditRequest,
    datas: list[bytes],
    images: list[Image.Image],
    mask_image: Image.Image | None,
    headers: dict[str, str],
) -> Response:
    body = await rendered(sim, request, datas, images, mask_image)
    sim.stats.record(200, request.n, request.model.name)
    headers["x-request-id"] = request_id()
    headers["x-editq-simulator"] = "true"
    return JSONResponse(body, headers=headers)


def request_id() -> str:
    return "req_sim_" + hashlib.sha256(f"{time.time_ns()}".encode()).hexdigest()[:24]


async def rendered(
    sim: Simulator,
    request: _EditRequest,
    datas: list[bytes],
    images: list[Image.Image],
    mask_image: Image.Image | None,
) -> dict[str, Any]:
    """The `ImagesResponse` body of an edit: its outputs and its usage."""
    model, n = request.model, request.n
    resolved_quality = "medium" if request.quality == "auto" else request.quality
    width, height = _resolve_size(model, request.size, images[0].size)
    resolved_size = f"{width}x{height}"
    resolved_background = "transparent" if request.background == "transparent" else "opaque"
    digest = hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in datas)).hexdigest()
    outputs = await asyncio.to_thread(
        _render_all,
        sim,
        images[0],
        mask_image,
        request.prompt,
        (width, height),
        n,
        digest,
        request.output_format,
        request.compression,
        request.fidelity,
        resolved_background == "transparent",
    )
    usage = usage_for(
        model,
        request.prompt,
        [im.size for im in images],
        request.fidelity,
        resolved_quality,
        resolved_size,
        n,
        sim.config.cached_share,
    )
    return {
        "created": int(time.time()),
        "data": [{"b64_json": base64.b64encode(o).decode()} for o in outputs],
        "background": resolved_background,
        "output_format": request.output_format,
        "size": resolved_size,
        "quality": resolved_quality,
        "usage": usage,
    }


def _render_all(
    sim: Simulator,
    first: Image.Image,
    mask: Image.Image | None,
    prompt: str,
    size: tuple[int, int],
    n: int,
    digest: str,
    output_format: str,
    compression: int | None,
    fidelity: str | None,
    transparent: bool,
) -> list[bytes]:
    results = []
    for index in range(n):
        key = f"{digest}|{prompt}|{size}|{output_format}|{compression}|{fidelity}|{transparent}|{index}"
        cached = sim.cache.get(key)
        if cached is None:
            seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
            image = effects.apply(
                first, prompt, size, seed=seed, mask=mask, input_fidelity=fidelity, transparent=transparent
            )
            out = io.BytesIO()
            if output_format == "jpeg":
                image.convert("RGB").save(
                    out, format="JPEG", quality=compression if compression is not None else 90
                )
            elif output_format == "webp":
                image.save(out, format="WEBP", quality=compression if compression is not None else 90)
            else:
                image.save(out, format="PNG", compress_level=1)
            cached = out.getvalue()
            sim.cache[key] = cached
            while len(sim.cache) > CACHE_ENTRIES:
                sim.cache.popitem(last=False)
        else:
            sim.cache.move_to_end(key)
        results.append(cached)
    return results


async def list_models(request: Request) -> Response:
    """`GET /v1/models`: what this account serves, names and snapshots, as OpenAI lists them."""
    sim = _sim(request)
    refused = _refused(sim, request)
    if refused is not None:
        return refused
    created = 1_745_000_000
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "system"}
        for model in sim.catalogue.models.values()
        if sim.serves(model)
        for name in (model.name, *model.snapshots)
    ]
    return JSONResponse({"object": "list", "data": data})


async def get_config(request: Request) -> Response:
    sim = _sim(request)
    return JSONResponse(asdict(sim.config))


async def set_config(request: Request) -> Response:
    sim = _sim(request)
    try:
        sim.reconfigure(await request.json())
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc))
    return JSONResponse(asdict(sim.config))


async def stats(request: Request) -> Response:
    sim = _sim(request)
    s = sim.stats
    since = float(request.query_params.get("since", "0"))
    timeline = [t for t in s.timeline if t[0] >= since] if request.query_params.get("timeline") else []
    return JSONResponse(
        {
            "requests": s.requests,
            "by_status": dict(s.by_status),
            "images": s.images,
            "by_model": dict(s.by_model),
            "timeline": timeline,
            "batches": dict(sim.batch_store.finished),
            "batch_lines": sim.batch_store.lines,
        }
    )


async def reset(request: Request) -> Response:
    sim = _sim(request)
    sim.stats = Stats()
    sim.limits = Limits(sim.config.rpm, sim.config.ipm, start_full=sim.config.start_full)
    sim.batch_store.finished.clear()
    sim.batch_store.lines = 0
    return JSONResponse({"reset": True})


async def _unknown_account(request: Request, exc: Exception) -> Response:
    return _error(404, f"no simulated account {exc!s:.40}: names are 1-32 letters, digits, '-' or '_'")


async def root(request: Request) -> Response:
    return PlainTextResponse(
        "editq simulator: an OpenAI-compatible image-edit server that applies deterministic Pillow "
        "effects. It is a simulator, not a generative model.\n"
    )


def create_app(config: SimConfig | None = None, catalogue: Catalogue | None = None) -> Starlette:
    app = Starlette(
        routes=[
            Route("/", root),
            Route("/v1/images/edits", edits, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/_sim/config", get_config, methods=["GET"]),
            Route("/_sim/config", set_config, methods=["POST"]),
            Route("/_sim/stats", stats, methods=["GET"]),
            Route("/_sim/reset", reset, methods=["POST"]),
            *BATCH_ROUTES,
            # several simulated accounts, each with its own limits, faults and stats
            Route("/a/{account}/v1/images/edits", edits, methods=["POST"]),
            Route("/a/{account}/v1/models", list_models, methods=["GET"]),
            Route("/a/{account}/_sim/config", get_config, methods=["GET"]),
            Route("/a/{account}/_sim/config", set_config, methods=["POST"]),
            Route("/a/{account}/_sim/stats", stats, methods=["GET"]),
            Route("/a/{account}/_sim/reset", reset, methods=["POST"]),
        ],
        exception_handlers={UnknownAccount: _unknown_account},
    )
    config = config or SimConfig()
    app.state.startup = replace(config)
    app.state.sim = Simulator(config, catalogue or catalogue_module.load())
    app.state.accounts = {}
    return app
