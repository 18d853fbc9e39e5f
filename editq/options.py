"""Edit options: parsed from a request, validated against the model, mapped onto the provider.

`parse_options` turns raw form or JSON values into an `EditOptions`; `plan_edit` checks them
against a catalogued model and the first source image and returns the `EditPlan`: what is sent
to the provider and how the outputs are cropped or resized afterwards.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from editq.catalogue import STANDARD_SIZES, Lane, Model
from editq.errors import InvalidRequest

STRENGTHS = ("low", "medium", "high")
#: `interactive` and `batch` wait in the fair queues (batch after interactive); `economy` goes
#: through the provider's Batch API at its batch price.
PRIORITIES = ("interactive", "batch", "economy")
EVENTS = ("edit.started", "edit.succeeded", "edit.failed", "edit.canceled", "edit.expired")
TERMINAL_EVENTS = ("edit.succeeded", "edit.failed", "edit.canceled", "edit.expired")
MAX_METADATA_KEYS = 16
MAX_METADATA_BYTES = 4096
MAX_METADATA_DEPTH = 8
MAX_RATIO_TERM = 100
#: Integers are ASCII digits only: `int()` would also read full-width digits or "1_0".
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,12})?")
#: Pixel budget used to pick a free-form size that matches an aspect ratio (gpt-image-2).
ARBITRARY_TARGET_PIXELS = 1536 * 1024

#: What edit strength adds to the prompt. The wording is part of the contract: it is what the
#: model reads, and the simulator keys its effect strength on it.
STRENGTH_PREAMBLE = {
    "low": "Make only the change described below and keep everything else in the image "
    "exactly as it is: same people, faces, composition, framing and colours.\n\n",
    "medium": "",
    "high": "Apply the change described below boldly; you may restyle the whole image, "
    "keeping only its main subject recognisable.\n\n",
}
#: input_fidelity per strength, for models that take it.
STRENGTH_FIDELITY = {"low": "high", "medium": "low", "high": "low"}

FIELDS = (
    "prompt",
    "model",
    "n",
    "size",
    "aspect_ratio",
    "output_size",
    "strength",
    "quality",
    "output_format",
    "output_compression",
    "background",
    "input_fidelity",
    "webhook_url",
    "webhook_events",
    "priority",
    "max_cost_usd",
    "metadata",
    "reuse",
    "user",
)

#: OpenAI's multipart edit fields (`CreateImageEditRequest`) that are edit options ...
OPENAI_OPTION_FIELDS = (
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "input_fidelity",
    "user",
)
#: ... and those about how the answer comes back.
OPENAI_ANSWER_FIELDS = ("stream", "partial_images", "response_format")


@dataclass(frozen=True)
class EditOptions:
    """What the client asked for, before any model is consulted."""

    prompt: str
    model: str | None = None
    n: int = 1
    size: str | None = None
    aspect_ratio: str | None = None
    output_size: str | None = None
    strength: str | None = None
    quality: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    background: str | None = None
    input_fidelity: str | None = None
    webhook_url: str | None = None
    webhook_events: tuple[str, ...] = TERMINAL_EVENTS
    #: None: the tenant's default priority (else interactive).
    priority: str | None = None
    max_cost_micros: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    reuse: bool = True
    user: str | None = None


@dataclass(frozen=True)
class EditPlan:
    """What editq sends to the provider for a job, and what it does with the outputs."""

    model: str
    api_model: str
    prompt: str
    n: int
    size: str
    quality: str
    output_format: str
    output_compression: int | None
    background: str
    input_fidelity: str | None
    strength: str | None
    #: Crop each output (centred) to this width:height ratio, if set.
    crop_ratio: tuple[int, int] | None
    #: Resize each output to exactly these pixel dimensions, if set.
    resize_to: tuple[int, int] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EditPlan:
        values = dict(data)
        for key in ("crop_ratio", "resize_to"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


def _one(values: dict[str, Any], name: str) -> Any:
    value = values.get(name)
    if isinstance(value, list):
        if len(value) != 1:
            raise InvalidRequest("duplicate_parameter", f"{name} was given more than once", name)
        return value[0]
    return value


def _text(values: dict[str, Any], name: str) -> str | None:
    value = _one(values, name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("invalid_parameter", f"{name} must be a string", name)
    value = value.strip()
    return value or None


def _int(values: dict[str, Any], name: str) -> int | None:
    value = _one(values, name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidRequest("invalid_parameter", f"{name} must be an integer", name)
    if isinstance(value, int):
        return value
    text = value.strip() if isinstance(value, str) else ""
    if not _INTEGER.fullmatch(text):
        raise InvalidRequest("invalid_parameter", f"{name} must be an integer", name)
    return int(text)


def ascii_int(text: str) -> int | None:
    """An integer written in ASCII digits, or None."""
    return int(text) if _INTEGER.fullmatch(text) else None


def json_depth(value: Any) -> int:
    """How deeply a parsed JSON value nests (a scalar is 0, `[]` is 1), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _bool(values: dict[str, Any], name: str, default: bool) -> bool:
    value = _one(values, name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise InvalidRequest("invalid_parameter", f"{name} must be true or false", name)


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    if value is not None and value not in allowed:
        raise InvalidRequest(f"invalid_{name}", f"{name} must be one of {', '.join(allowed)}", name)
    return value


def usd_to_micros(value: Any, name: str) -> int:
    text = value.strip() if isinstance(value, str) else str(value)
    if isinstance(value, bool) or not (isinstance(value, int | float) or _AMOUNT.fullmatch(text)):
        raise InvalidRequest("invalid_parameter", f"{name} must be an amount in USD", name)
    try:
        amount = Decimal(text)
    except (InvalidOperation, ValueError):
        raise InvalidRequest("invalid_parameter", f"{name} must be an amount in USD", name) from None
    if not amount.is_finite() or amount < 0 or amount > Decimal(10) ** 9:
        raise InvalidRequest("invalid_parameter", f"{name} must be between 0 and 1e9 USD", name)
    return int((amount * 1_000_000).to_integral_value(rounding="ROUND_FLOOR"))


def _metadata(values: dict[str, Any]) -> dict[str, str]:
    raw = _one(values, "metadata")
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        if len(raw.encode()) > MAX_METADATA_BYTES:
            raise InvalidRequest("metadata_too_large", "metadata is over 4 KB", "metadata")
        try:
            raw = json.loads(raw, parse_constant=_not_json)
        except RecursionError:
            raise InvalidRequest(
                "metadata_too_deep", f"metadata nests more than {MAX_METADATA_DEPTH} levels", "metadata"
            ) from None
        except ValueError:
            raise InvalidRequest(
                "invalid_metadata", "metadata must be a JSON object (no NaN or Infinity)", "metadata"
            ) from None
    if json_depth(raw) > MAX_METADATA_DEPTH:
        raise InvalidRequest(
            "metadata_too_deep", f"metadata nests more than {MAX_METADATA_DEPTH} levels", "metadata"
        )
    if not isinstance(raw, dict):
        raise InvalidRequest("invalid_metadata", "metadata must be a JSON object", "metadata")
    if len(raw) > MAX_METADATA_KEYS:
        raise InvalidRequest("metadata_too_large", "metadata takes at most 16 keys", "metadata")
    try:
        result = {str(k): v if isinstance(v, str) else json.dumps(v, allow_nan=False) for k, v in raw.items()}
    except ValueError:
        raise InvalidRequest(
            "invalid_metadata", "metadata values cannot be NaN or Infinity", "metadata"
        ) from None
    if len(json.dumps(result).encode()) > MAX_METADATA_BYTES:
        raise InvalidRequest("metadata_too_large", "metadata is over 4 KB", "metadata")
    return result


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _events(values: dict[str, Any]) -> tuple[str, ...]:
    raw = values.get("webhook_events")
    if raw is None:
        return TERMINAL_EVENTS
    items: list[str] = []
    for value in raw if isinstance(raw, list) else [raw]:
        if not isinstance(value, str):
            raise InvalidRequest("invalid_webhook_events", "webhook_events are strings", "webhook_events")
        items.extend(part.strip() for part in value.split(",") if part.strip())
    unknown = [item for item in items if item not in EVENTS]
    if unknown or not items:
        raise InvalidRequest(
            "invalid_webhook_events",
            f"webhook_events must be among {', '.join(EVENTS)}",
            "webhook_events",
        )
    return tuple(dict.fromkeys(items))


def parse_options(values: dict[str, Any]) -> EditOptions:
    """Typed options from form fields (lists of strings) or a JSON object."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidRequest("unknown_parameter", f"unknown parameter {unknown[0]!r}", unknown[0])
    prompt = _one(values, "prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("prompt_missing", "prompt is required", "prompt")
    if "\x00" in prompt:
        raise InvalidRequest("invalid_prompt", "prompt must not contain NUL characters", "prompt")
    n = _int(values, "n")
    compression = _int(values, "output_compression")
    max_cost = _one(values, "max_cost_usd")
    priority = _choice(_text(values, "priority"), PRIORITIES, "priority")
    user = _text(values, "user")
    webhook_url = _one(values, "webhook_url")
    if isinstance(webhook_url, str) and ("\r" in webhook_url or "\n" in webhook_url):
        raise InvalidRequest("invalid_webhook_url", "webhook_url must not contain CR or LF", "webhook_url")
    if user is not None and len(user) > 256:
        raise InvalidRequest("invalid_parameter", "user is at most 256 characters", "user")
    return EditOptions(
        prompt=prompt.strip(),
        model=_text(values, "model"),
        n=1 if n is None else n,
        size=_text(values, "size"),
        aspect_ratio=_text(values, "aspect_ratio"),
        output_size=_choice(_text(values, "output_size"), ("model", "input"), "output_size"),
        strength=_choice(_text(values, "strength"), STRENGTHS, "strength"),
        quality=_text(values, "quality"),
        output_format=_text(values, "output_format"),
        output_compression=compression,
        background=_text(values, "background"),
        input_fidelity=_choice(_text(values, "input_fidelity"), ("low", "high"), "input_fidelity"),
        webhook_url=_text(values, "webhook_url"),
        webhook_events=_events(values),
        priority=priority,
        max_cost_micros=None
        if max_cost is None or max_cost == ""
        else usd_to_micros(max_cost, "max_cost_usd"),
        metadata=_metadata(values),
        reuse=_bool(values, "reuse", True),
        user=user,
    )


def lane_of(priority: str) -> Lane:
    """The lane a priority runs in."""
    return Lane.ECONOMY if priority == "economy" else Lane.INTERACTIVE


def parse_ratio(text: str) -> tuple[int, int]:
    parts = [ascii_int(part) for part in text.replace("/", ":").split(":")]
    if len(parts) != 2 or parts[0] is None or parts[1] is None:
        raise InvalidRequest(
            "invalid_aspect_ratio", "aspect_ratio is match_input or W:H, e.g. 16:9", "aspect_ratio"
        )
    width, height = parts[0], parts[1]
    if not (0 < width <= MAX_RATIO_TERM and 0 < height <= MAX_RATIO_TERM):
        raise InvalidRequest(
            "invalid_aspect_ratio", "aspect_ratio terms are whole numbers from 1 to 100", "aspect_ratio"
        )
    divisor = math.gcd(width, height)
    return width // divisor, height // divisor


def parse_size(text: str) -> tuple[int, int] | None:
    parts = [ascii_int(part) for part in text.lower().split("x")]
    if len(parts) != 2 or parts[0] is None or parts[1] is None:
        return None
    return parts[0], parts[1]


def _closest_standard(ratio: Fraction) -> str:
    def distance(size: str) -> float:
        width, height = (int(p) for p in size.split("x"))
        return abs(math.log(width / height) - math.log(ratio))

    return min(STANDARD_SIZES, key=distance)


def _exact_for(model: Model, ratio: Fraction) -> str | None:
    """A free-form size of exactly `ratio`, its area nearest the target, or None if none fits:
    W = step x a x k and H = step x b x k for the ratio a:b in lowest terms."""
    rules = model.arbitrary_sizes
    assert rules is not None
    step, a, b = rules.multiple_of, ratio.numerator, ratio.denominator
    k_max = rules.max_edge // (step * max(a, b))
    target = math.sqrt(ARBITRARY_TARGET_PIXELS / (step * step * a * b))
    for k in sorted(range(1, k_max + 1), key=lambda k: abs(k - target)):
        width, height = step * a * k, step * b * k
        if min(width, height) >= rules.min_edge and width * height <= rules.max_pixels:
            return f"{width}x{height}"
    return None


def _arbitrary_for(model: Model, ratio: Fraction) -> str:
    rules = model.arbitrary_sizes
    assert rules is not None
    exact = _exact_for(model, ratio)
    if exact is not None:
        return exact
    step = rules.multiple_of
    width = math.sqrt(ARBITRARY_TARGET_PIXELS * ratio)
    height = width / float(ratio)
    scale = min(1.0, rules.max_edge / max(width, height))
    width, height = width * scale, height * scale
    w = max(rules.min_edge, min(rules.max_edge, round(width / step) * step))
    h = max(rules.min_edge, min(rules.max_edge, round(height / step) * step))
    return f"{w}x{h}"


def check_size(model: Model, size: str) -> None:
    if size in model.sizes:
        return
    rules = model.arbitrary_sizes
    dims = parse_size(size)
    if rules is None or dims is None:
        raise InvalidRequest(
            "unsupported_size",
            f"{model.name} supports size {', '.join(model.sizes)}"
            + ("" if rules is None else " or WxH within its bounds"),
            "size",
        )
    width, height = dims
    ratio = Fraction(width, height) if height else Fraction(0)
    problems = []
    if width % rules.multiple_of or height % rules.multiple_of:
        problems.append(f"both sides divisible by {rules.multiple_of}")
    if not (rules.min_edge <= min(width, height) and max(width, height) <= rules.max_edge):
        problems.append(f"sides between {rules.min_edge} and {rules.max_edge}")
    if width * height > rules.max_pixels:
        problems.append(f"at most {rules.max_pixels} pixels")
    if not (rules.min_ratio <= ratio <= rules.max_ratio):
        problems.append(f"ratio between {rules.min_ratio} and {rules.max_ratio}")
    if problems:
        raise InvalidRequest(
            "unsupported_size", f"size {size} for {model.name} needs {'; '.join(problems)}", "size"
        )


def plan_edit(
    options: EditOptions,
    model: Model,
    api_model: str,
    *,
    image_count: int,
    first_image: tuple[int, int],
    unsupported_formats: tuple[str, ...] = (),
    lane: Lane = Lane.INTERACTIVE,
) -> EditPlan:
    """Validate `options` against `model` and decide exactly what to send and how to post-process.
    The economy lane sends the Batch API's JSON body, whose `size` takes the standard sizes only:
    a ratio is then met by the nearest standard size and a crop, even on free-form models."""
    _check_counts(options, model, image_count)
    quality = _checked_quality(options, model)
    output_format = _checked_output_format(options, model, unsupported_formats)
    background = _checked_background(options, model, output_format)
    compression = _checked_compression(options, output_format)
    _check_fidelity(options, model)
    free_sizes = model.arbitrary_sizes is not None and lane is Lane.INTERACTIVE
    size, crop, resize = _geometry(options, model, first_image, free_sizes=free_sizes)
    return EditPlan(
        model=model.name,
        api_model=api_model,
        prompt=_prompt_with_strength(options, model),
        n=options.n,
        size=size,
        quality=quality,
        output_format=output_format,
        output_compression=compression,
        background=background,
        input_fidelity=_fidelity_to_send(options, model),
        strength=options.strength,
        crop_ratio=crop,
        resize_to=resize,
    )


def _check_counts(options: EditOptions, model: Model, image_count: int) -> None:
    if image_count > model.max_images:
        raise InvalidRequest(
            "too_many_images", f"{model.name} takes at most {model.max_images} images", "image"
        )
    if len(options.prompt) > model.prompt_max_chars:
        raise InvalidRequest(
            "prompt_too_long",
            f"prompt is {len(options.prompt)} characters; {model.name} takes at most "
            f"{model.prompt_max_chars}",
            "prompt",
        )
    if not 1 <= options.n <= model.max_n:
        raise InvalidRequest("invalid_n", f"n must be between 1 and {model.max_n}", "n")


def _checked_quality(options: EditOptions, model: Model) -> str:
    quality = options.quality or "auto"
    if quality not in model.qualities:
        raise InvalidRequest(
            "unsupported_quality", f"{model.name} supports quality {', '.join(model.qualities)}", "quality"
        )
    return quality


def _checked_output_format(options: EditOptions, model: Model, unsupported_formats: tuple[str, ...]) -> str:
    output_format = options.output_format or "png"
    formats = tuple(f for f in model.output_formats if f not in unsupported_formats)
    if output_format == "jpg":
        output_format = "jpeg"
    if output_format not in formats:
        raise InvalidRequest(
            "unsupported_output_format",
            f"output_format must be one of {', '.join(formats)} for {model.name} on this provider",
            "output_format",
        )
    return output_format


def _checked_background(options: EditOptions, model: Model, output_format: str) -> str:
    background = options.background or "auto"
    if background not in model.backgrounds:
        raise InvalidRequest(
            "unsupported_background",
            f"{model.name} supports background {', '.join(model.backgrounds)}",
            "background",
        )
    if background == "transparent" and output_format not in ("png", "webp"):
        raise InvalidRequest(
            "transparent_needs_png_or_webp",
            "a transparent background needs output_format png or webp",
            "background",
        )
    return background


def _checked_compression(options: EditOptions, output_format: str) -> int | None:
    compression = options.output_compression
    if compression is None:
        return None
    if output_format not in ("jpeg", "webp"):
        raise InvalidRequest(
            "compression_needs_jpeg_or_webp",
            "output_compression applies only to jpeg and webp",
            "output_compression",
        )
    if not 0 <= compression <= 100:
        raise InvalidRequest(
            "invalid_output_compression", "output_compression is 0 to 100", "output_compression"
        )
    return compression


def _check_fidelity(options: EditOptions, model: Model) -> None:
    if options.input_fidelity is not None and not model.input_fidelity:
        raise InvalidRequest(
            "input_fidelity_unsupported", f"{model.name} does not take input_fidelity", "input_fidelity"
        )
    if options.input_fidelity is not None and options.strength is not None:
        raise InvalidRequest(
            "conflicting_options",
            "give strength or input_fidelity, not both (strength sets input_fidelity)",
            "strength",
        )


def _fidelity_to_send(options: EditOptions, model: Model) -> str | None:
    if options.strength is not None and model.input_fidelity:
        return STRENGTH_FIDELITY[options.strength]
    return options.input_fidelity


def _prompt_with_strength(options: EditOptions, model: Model) -> str:
    prompt = STRENGTH_PREAMBLE[options.strength or "medium"] + options.prompt
    if len(prompt) > model.prompt_max_chars:
        raise InvalidRequest(
            "prompt_too_long",
            f"prompt with the strength instruction is {len(prompt)} characters; {model.name} "
            f"takes at most {model.prompt_max_chars}",
            "prompt",
        )
    return prompt


def _geometry(
    options: EditOptions, model: Model, first_image: tuple[int, int], *, free_sizes: bool
) -> tuple[str, tuple[int, int] | None, tuple[int, int] | None]:
    """The size to request, the ratio to crop to and the dimensions to resize to. Without
    `free_sizes` only the model's listed sizes are asked for."""
    width, height = first_image
    resize = (width, height) if options.output_size == "input" else None
    if options.size is not None:
        if options.aspect_ratio is not None:
            raise InvalidRequest("conflicting_options", "give size or aspect_ratio, not both", "aspect_ratio")
        if model.arbitrary_sizes is not None and not free_sizes and options.size not in model.sizes:
            raise InvalidRequest(
                "economy_unsupported",
                f"priority=economy goes through the Batch API, whose edit body takes size "
                f"{', '.join(model.sizes)} only; use aspect_ratio (met by a crop) or priority=interactive",
                "size",
            )
        check_size(model, options.size)
        if resize is not None:
            return options.size, _reduced(width, height), resize
        return options.size, None, None
    if options.aspect_ratio is None and resize is None:
        return "auto" if "auto" in model.sizes else model.sizes[0], None, None

    crop: tuple[int, int] | None
    if options.aspect_ratio in (None, "match_input"):
        crop = _reduced(width, height)
    else:
        crop = parse_ratio(options.aspect_ratio)
        if resize is not None and Fraction(*crop) != Fraction(width, height):
            raise InvalidRequest(
                "conflicting_options",
                "output_size=input keeps the input's aspect ratio; drop aspect_ratio or use match_input",
                "output_size",
            )
    ratio = Fraction(*crop)
    if not (Fraction(1, 3) <= ratio <= Fraction(3)):
        raise InvalidRequest(
            "invalid_aspect_ratio", "aspect ratio must be between 1:3 and 3:1", "aspect_ratio"
        )
    size = _arbitrary_for(model, ratio) if free_sizes else _closest_standard(ratio)
    if not free_sizes and size not in model.sizes:
        raise InvalidRequest("unsupported_size", f"{model.name} has no size for that ratio", "aspect_ratio")
    dims = parse_size(size)
    if free_sizes and dims is not None and Fraction(*dims) == ratio:
        crop = None  # the provider is asked for the exact ratio: nothing to crop
    return size, crop, resize


def _reduced(width: int, height: int) -> tuple[int, int]:
    divisor = math.gcd(width, height) or 1
    return width // divisor, height // divisor


def cropped_dimensions(width: int, height: int, ratio: tuple[int, int]) -> tuple[int, int]:
    """The largest centred box of `ratio` inside a width x height image."""
    rw, rh = ratio
    if width * rh > height * rw:
        return max(1, round(height * rw / rh)), height
    return width, max(1, round(width * rh / rw))
