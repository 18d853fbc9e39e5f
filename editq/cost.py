"""Cost: an upper-bound estimate before a job runs, the exact price of its `usage` after.

Money is integer micro-dollars. A price in USD per 1M tokens is micro-dollars per token, so
`tokens x price` is micro-dollars; a job's total is rounded up once, to the micro-dollar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from editq.catalogue import STANDARD_SIZES, Lane, Model, Prices
from editq.errors import InvalidRequest
from editq.options import EditPlan, parse_size

TILE = 512
FIT = 2048
BASE_IMAGE_TOKENS = 65
TOKENS_PER_TILE = 129
HIGH_FIDELITY_SQUARE = 4160
HIGH_FIDELITY_OTHER = 6240
#: Text tokens assumed on top of the prompt's bytes for each request (role and framing).
TEXT_OVERHEAD_TOKENS = 16


@dataclass(frozen=True)
class Usage:
    """The provider's `usage` object, reduced to what is billed. Cached input tokens are apart
    from the uncached ones (`text_input` and `image_input` exclude them)."""

    text_input: int
    image_input: int
    image_output: int
    text_output: int
    text_input_cached: int = 0
    image_input_cached: int = 0

    @classmethod
    def from_api(cls, usage: dict[str, Any]) -> Usage:
        """Every part of `usage` that is present: `input_tokens_details.{text_tokens,
        image_tokens,cached_tokens}` (and `cached_tokens_details` if the provider splits the
        cached tokens) and `output_tokens_details.{image_tokens,text_tokens}`.

        Cached tokens without a split are taken from the text tokens first: text has the
        smaller cache discount, so the charge is never below what the provider bills."""
        details = usage.get("input_tokens_details") or {}
        out_details = usage.get("output_tokens_details")
        text_in = _count(details.get("text_tokens", 0))
        image_in = _count(details.get("image_tokens", _count(usage.get("input_tokens", 0)) - text_in))
        split = details.get("cached_tokens_details")
        if isinstance(split, dict):
            text_cached = _count(split.get("text_tokens", 0))
            image_cached = _count(split.get("image_tokens", 0))
        else:
            cached = _count(details.get("cached_tokens") or 0)
            text_cached = min(cached, text_in)
            image_cached = min(cached - text_cached, image_in)
        if out_details:
            image_out = _count(out_details.get("image_tokens", 0))
            text_out = _count(out_details.get("text_tokens", 0))
        else:
            image_out, text_out = _count(usage.get("output_tokens", 0)), 0
        values = (
            text_in - text_cached,
            image_in - image_cached,
            image_out,
            text_out,
            text_cached,
            image_cached,
        )
        if min(values) < 0:
            raise ValueError(f"inconsistent token counts in usage {usage!r}")
        return cls(*values)


def _count(value: Any) -> int:
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"a token count is not an integer: {value!r}") from None
    if isinstance(value, bool | float) or count < 0:
        raise ValueError(f"not a whole, non-negative token count: {value!r}")
    return count


def micros(amount: Fraction) -> int:
    """Round a micro-dollar amount up to a whole micro-dollar."""
    return math.ceil(amount)


def usd(amount_micros: int) -> str:
    """Micro-dollars as a USD string with six decimals."""
    sign = "-" if amount_micros < 0 else ""
    whole, frac = divmod(abs(amount_micros), 1_000_000)
    return f"{sign}{whole}.{frac:06d}"


def price_usage(prices: Prices, usage: Usage) -> int:
    """What `usage` costs at `prices`, in micro-dollars (exact, rounded up once)."""
    if not prices.complete:
        raise ValueError("this model's prices are not set")
    assert prices.text_input is not None
    assert prices.image_input is not None
    assert prices.image_output is not None
    text_out_price = prices.text_output if prices.text_output is not None else prices.image_output
    text_cached_price = (
        prices.text_input_cached if prices.text_input_cached is not None else prices.text_input
    )
    image_cached_price = (
        prices.image_input_cached if prices.image_input_cached is not None else prices.image_input
    )
    total = (
        usage.text_input * prices.text_input
        + usage.text_input_cached * text_cached_price
        + usage.image_input * prices.image_input
        + usage.image_input_cached * image_cached_price
        + usage.image_output * prices.image_output
        + usage.text_output * text_out_price
    )
    return micros(total)


def charge(model: Model, lane: Lane, usage: dict[str, Any]) -> int:
    """What the provider's `usage` of a job costs in `lane`, in micro-dollars (0 for a model
    without confirmed prices, which never runs under a budget)."""
    prices = model.tariff(lane).prices
    if not prices.complete:
        return 0
    return price_usage(prices, Usage.from_api(usage))


def image_input_tokens(width: int, height: int, fidelity: str | None) -> int:
    """Input tokens of one image by gpt-image-1's documented formula."""
    scale = min(1.0, FIT / max(width, height))
    w, h = width * scale, height * scale
    shortest = min(w, h)
    w, h = w * TILE / shortest, h * TILE / shortest
    tiles = math.ceil(round(w, 6) / TILE) * math.ceil(round(h, 6) / TILE)
    tokens = BASE_IMAGE_TOKENS + TOKENS_PER_TILE * tiles
    if fidelity == "high":
        tokens += HIGH_FIDELITY_SQUARE if width == height else HIGH_FIDELITY_OTHER
    return tokens


def text_tokens_upper_bound(prompt: str, images: int, model: Model) -> int:
    """No byte-level BPE token is shorter than one byte, so bytes bound the prompt's tokens."""
    return len(prompt.encode()) + TEXT_OVERHEAD_TOKENS + images * model.extra_text_tokens_per_image


def output_tokens(model: Model, quality: str, size: str) -> int:
    """Output tokens of one image, an upper bound; `auto` quality or size is priced as the
    largest. Models with free-form sizes are bounded by area (`area_tokens`)."""
    if model.output_tokens_area_factor is not None:
        return area_tokens(model, quality, size, model.output_tokens_area_factor)
    q = "high" if quality == "auto" else quality
    by_size = model.output_tokens.get(q, {})
    table_sizes = list(STANDARD_SIZES) if size == "auto" else [size]
    best = max((by_size[s] for s in table_sizes if s in by_size), default=0)
    if best == 0:
        raise InvalidRequest("unsupported_size", f"no output-token figure for {size} on {model.name}", "size")
    return best


def area_tokens(model: Model, quality: str, size: str, factor: Fraction) -> int:
    """The quality's highest tokens-per-pixel in the 1.x table, times the size's area (the
    largest allowed for `auto`), times `factor`; rounded up."""
    by_size = model.output_tokens.get("high" if quality == "auto" else quality, {})
    if not by_size:
        raise InvalidRequest("unsupported_quality", f"no output-token figure for {quality}", "quality")
    per_pixel = max(Fraction(tokens, _area(s)) for s, tokens in by_size.items())
    if size == "auto":
        area = model.arbitrary_sizes.max_pixels if model.arbitrary_sizes else max(map(_area, by_size))
    else:
        dims = parse_size(size)
        if dims is None:
            raise InvalidRequest("unsupported_size", f"size {size!r} is not WxH", "size")
        area = dims[0] * dims[1]
    return math.ceil(per_pixel * area * factor)


def _area(size: str) -> int:
    dims = parse_size(size)
    assert dims is not None
    return dims[0] * dims[1]


def per_image_price(model: Model, quality: str, size: str) -> Fraction:
    """The published per-image price in micro-dollars (0 when none is published)."""
    qualities = model.per_image_prices.keys() if quality == "auto" else [quality]
    sizes = STANDARD_SIZES if size == "auto" else (size,)
    best = Fraction(0)
    for q in qualities:
        for s in sizes:
            price = model.per_image_prices.get(q, {}).get(s)
            if price is not None:
                best = max(best, price * 1_000_000)
    return best


@dataclass(frozen=True)
class Estimate:
    """An upper bound on what a job can cost, with the token counts behind it."""

    micros: int
    text_input_tokens: int
    image_input_tokens: int
    output_tokens_per_image: int
    lane: Lane = Lane.INTERACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimated_usd": usd(self.micros),
            "lane": self.lane.value,
            "text_input_tokens": self.text_input_tokens,
            "image_input_tokens": self.image_input_tokens,
            "output_tokens_per_image": self.output_tokens_per_image,
        }


def estimate(
    model: Model,
    plan: EditPlan,
    images: list[tuple[int, int]],
    mask: tuple[int, int] | None,
    lane: Lane = Lane.INTERACTIVE,
) -> Estimate:
    """The most this job can cost in `lane`. Every input image (and the mask) is counted at the
    fidelity asked; `auto` quality and size are priced as the largest output."""
    tariff = model.tariff(lane)
    prices = tariff.prices
    if not prices.complete:
        raise InvalidRequest(
            "model_price_unknown",
            f"{model.name} has no confirmed prices; the operator must set them in the catalogue",
            "model",
        )
    assert prices.text_input is not None
    assert prices.image_input is not None
    assert prices.image_output is not None
    text = text_tokens_upper_bound(plan.prompt, len(images), model)
    counted = list(images) + ([mask] if mask else [])
    fidelity = model.input_fidelity_billed or plan.input_fidelity
    image_in = sum(image_input_tokens(w, h, fidelity) for w, h in counted)
    out = output_tokens(model, plan.quality, plan.size)
    out_cost = max(
        out * prices.image_output, per_image_price(model, plan.quality, plan.size) * tariff.per_image_factor
    )
    text_out_price = prices.text_output if prices.text_output is not None else prices.image_output
    total = (
        text * prices.text_input
        + image_in * prices.image_input
        + plan.n * out_cost
        + model.max_text_output_tokens * text_out_price
    )
    return Estimate(
        micros=micros(total),
        text_input_tokens=text,
        image_input_tokens=image_in,
        output_tokens_per_image=out,
        lane=lane,
    )
