"""Options are validated per model, and strength and aspect ratio map onto each model."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from editq import catalogue
from editq.errors import EditqError
from editq.options import (
    STRENGTH_PREAMBLE,
    EditOptions,
    check_size,
    cropped_dimensions,
    parse_options,
    plan_edit,
)

CAT = catalogue.load()
FIRST = (1200, 800)


def _plan(model: str = "gpt-image-1-mini", first: tuple[int, int] = FIRST, images: int = 1, **opts: Any):  # type: ignore[no-untyped-def]
    options = parse_options({"prompt": "make it nighttime", **opts})
    return plan_edit(options, CAT.models[model], model, image_count=images, first_image=first)


def _refused(model: str = "gpt-image-1-mini", images: int = 1, **opts: Any) -> EditqError:
    with pytest.raises(EditqError) as refused:
        _plan(model, images=images, **opts)
    return refused.value


def test_defaults() -> None:
    plan = _plan()
    assert (plan.size, plan.quality, plan.output_format, plan.background, plan.n) == (
        "auto",
        "auto",
        "png",
        "auto",
        1,
    )
    assert plan.input_fidelity is None
    assert plan.crop_ratio is None
    assert plan.resize_to is None
    assert plan.prompt == "make it nighttime"


REFUSALS: list[tuple[str, dict[str, Any], str, str]] = []
for name, model in CAT.models.items():
    REFUSALS += [
        (name, {"n": "0"}, "invalid_n", "n"),
        (name, {"n": str(model.max_n + 1)}, "invalid_n", "n"),
        (name, {"size": "123x456"}, "unsupported_size", "size"),
        (name, {"size": "huge"}, "unsupported_size", "size"),
        (name, {"quality": "standard"}, "unsupported_quality", "quality"),
        (name, {"output_format": "gif"}, "unsupported_output_format", "output_format"),
        (name, {"background": "blurry"}, "unsupported_background", "background"),
        (
            name,
            {"background": "transparent", "output_format": "jpeg"},
            "transparent_needs_png_or_webp"
            if "transparent" in model.backgrounds
            else "unsupported_background",
            "background",
        ),
        (name, {"output_compression": "50"}, "compression_needs_jpeg_or_webp", "output_compression"),
        (
            name,
            {"output_format": "webp", "output_compression": "101"},
            "invalid_output_compression",
            "output_compression",
        ),
        (name, {"aspect_ratio": "4:1"}, "invalid_aspect_ratio", "aspect_ratio"),
        (name, {"aspect_ratio": "wide"}, "invalid_aspect_ratio", "aspect_ratio"),
        (name, {"aspect_ratio": "16:9", "size": "1024x1024"}, "conflicting_options", "aspect_ratio"),
        (name, {"aspect_ratio": "16:9", "output_size": "input"}, "conflicting_options", "output_size"),
        (name, {"prompt": "x" * (model.prompt_max_chars + 1)}, "prompt_too_long", "prompt"),
        (
            name,
            {"prompt": "x" * (model.prompt_max_chars - 10), "strength": "low"},
            "prompt_too_long",
            "prompt",
        ),
    ]
    if model.input_fidelity:
        REFUSALS.append(
            (name, {"input_fidelity": "high", "strength": "low"}, "conflicting_options", "strength")
        )
    else:
        REFUSALS.append((name, {"input_fidelity": "high"}, "input_fidelity_unsupported", "input_fidelity"))
    if model.arbitrary_sizes:
        REFUSALS += [
            (name, {"size": "1000x1000"}, "unsupported_size", "size"),
            (name, {"size": "4096x2048"}, "unsupported_size", "size"),
            (name, {"size": "3200x800"}, "unsupported_size", "size"),
            (name, {"size": "128x128"}, "unsupported_size", "size"),
        ]


@pytest.mark.parametrize(
    ("model", "opts", "code", "param"), REFUSALS, ids=[f"{m}-{c}-{'-'.join(o)}" for m, o, c, _ in REFUSALS]
)
def test_every_refusal_names_its_param(model: str, opts: dict[str, Any], code: str, param: str) -> None:
    refused = _refused(model, **opts)
    assert (refused.code, refused.param, refused.status) == (code, param, 400)


def test_too_many_images_for_the_model() -> None:
    refused = _refused(images=17)
    assert (refused.code, refused.param) == ("too_many_images", "image")


@pytest.mark.parametrize(
    ("fields", "code", "param"),
    [
        ({}, "prompt_missing", "prompt"),
        ({"prompt": "   "}, "prompt_missing", "prompt"),
        ({"prompt": "x", "n": "two"}, "invalid_parameter", "n"),
        ({"prompt": "x", "reuse": "maybe"}, "invalid_parameter", "reuse"),
        ({"prompt": "x", "strength": "extreme"}, "invalid_strength", "strength"),
        ({"prompt": "x", "priority": "now"}, "invalid_priority", "priority"),
        ({"prompt": "x", "output_size": "huge"}, "invalid_output_size", "output_size"),
        ({"prompt": "x", "max_cost_usd": "-1"}, "invalid_parameter", "max_cost_usd"),
        ({"prompt": "x", "max_cost_usd": "NaN"}, "invalid_parameter", "max_cost_usd"),
        ({"prompt": "x", "metadata": "[1]"}, "invalid_metadata", "metadata"),
        ({"prompt": "x", "metadata": {str(i): i for i in range(17)}}, "metadata_too_large", "metadata"),
        ({"prompt": "x", "webhook_events": "edit.done"}, "invalid_webhook_events", "webhook_events"),
        ({"prompt": "x", "colour": "red"}, "unknown_parameter", "colour"),
        ({"prompt": ["a", "b"]}, "duplicate_parameter", "prompt"),
        ({"prompt": "x", "input_fidelity": "medium"}, "invalid_input_fidelity", "input_fidelity"),
    ],
)
def test_parse_refusals(fields: dict[str, Any], code: str, param: str) -> None:
    with pytest.raises(EditqError) as refused:
        parse_options(fields)
    assert (refused.value.code, refused.value.param) == (code, param)


def test_parse_values() -> None:
    options = parse_options(
        {
            "prompt": " x ",
            "n": "3",
            "reuse": "false",
            "max_cost_usd": "0.25",
            "metadata": '{"a": 1}',
            "webhook_events": "edit.started,edit.succeeded",
            "priority": "batch",
        }
    )
    assert options == EditOptions(
        prompt="x",
        n=3,
        reuse=False,
        max_cost_micros=250_000,
        metadata={"a": "1"},
        webhook_events=("edit.started", "edit.succeeded"),
        priority="batch",
    )


@pytest.mark.parametrize(
    ("model", "strength", "fidelity"),
    [
        ("gpt-image-1.5", "low", "high"),
        ("gpt-image-1.5", "medium", "low"),
        ("gpt-image-1.5", "high", "low"),
        ("gpt-image-1", "low", "high"),
        ("gpt-image-1-mini", "low", None),
        ("gpt-image-1-mini", "high", None),
        ("gpt-image-2", "low", None),
    ],
)
def test_strength_mapping(model: str, strength: str, fidelity: str | None) -> None:
    plan = _plan(model, strength=strength)
    assert plan.input_fidelity == fidelity
    assert plan.prompt == STRENGTH_PREAMBLE[strength] + "make it nighttime"
    assert plan.strength == strength


@pytest.mark.parametrize(
    ("model", "first", "ratio", "size", "crop"),
    [
        ("gpt-image-1-mini", (1200, 800), "match_input", "1536x1024", (3, 2)),
        ("gpt-image-1-mini", (800, 1200), "match_input", "1024x1536", (2, 3)),
        ("gpt-image-1-mini", (1000, 1000), "match_input", "1024x1024", (1, 1)),
        ("gpt-image-1.5", (1200, 800), "16:9", "1536x1024", (16, 9)),
        ("gpt-image-1.5", (1200, 800), "9:16", "1024x1536", (9, 16)),
        ("gpt-image-1", (1200, 800), "5:4", "1536x1024", (5, 4)),
        ("gpt-image-1", (1200, 800), "8:7", "1024x1024", (8, 7)),
        # gpt-image-2 is asked for the exact ratio: nothing to crop
        ("gpt-image-2", (1200, 800), "16:9", "1792x1008", None),
        ("gpt-image-2", (1200, 800), "match_input", "1536x1024", None),
        ("gpt-image-2", (1000, 3000), "1:3", "720x2160", None),
        ("gpt-image-2", (1000, 667), "match_input", "1536x1024", (1000, 667)),  # no exact size fits
    ],
)
def test_aspect_ratio_mapping(
    model: str, first: tuple[int, int], ratio: str, size: str, crop: tuple[int, int] | None
) -> None:
    plan = _plan(model, first=first, aspect_ratio=ratio)
    assert plan.size == size
    assert plan.crop_ratio == crop
    width, height = (int(p) for p in size.split("x"))
    if crop is None:
        asked = (first[0], first[1]) if ratio == "match_input" else tuple(map(int, ratio.split(":")))
        assert Fraction(width, height) == Fraction(*asked)
        return
    out_w, out_h = cropped_dimensions(width, height, crop)
    assert abs(out_w / out_h - crop[0] / crop[1]) < 0.01
    if model == "gpt-image-2":
        assert width % 16 == 0
        assert height % 16 == 0


def test_gpt_image_2_asks_for_every_ratio_exactly() -> None:
    """Every W:H with terms up to 100 within 1:3..3:1 maps to a valid size of exactly that ratio."""
    model = CAT.models["gpt-image-2"]
    seen = 0
    for w in range(1, 101):
        for h in range(1, 101):
            ratio = Fraction(w, h)
            if not Fraction(1, 3) <= ratio <= 3 or (ratio.numerator, ratio.denominator) != (w, h):
                continue
            plan = _plan("gpt-image-2", aspect_ratio=f"{w}:{h}")
            check_size(model, plan.size)
            width, height = (int(p) for p in plan.size.split("x"))
            assert Fraction(width, height) == ratio, plan.size
            assert plan.crop_ratio is None
            seen += 1
    assert seen > 3000


def test_output_at_input_dimensions() -> None:
    plan = _plan(first=(1013, 677), output_size="input")
    assert plan.resize_to == (1013, 677)
    assert plan.crop_ratio == (1013, 677)
    assert plan.size == "1536x1024"
    sized = _plan(first=(1013, 677), output_size="input", size="1024x1024")
    assert sized.resize_to == (1013, 677)
