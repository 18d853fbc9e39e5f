"""Properties of the option parser: whatever a client sends, parsing and planning either succeed
or refuse with `InvalidRequest`, never another exception; valid options survive the round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from editq import catalogue
from editq.errors import InvalidRequest
from editq.options import (
    EVENTS,
    FIELDS,
    PRIORITIES,
    STRENGTHS,
    EditOptions,
    EditPlan,
    parse_options,
    plan_edit,
)

CAT = catalogue.load()
#: ASCII digits to their full-width forms, which `int()` would read as digits.
FULL_WIDTH = {ord(d): ord(d) + 0xFEE0 for d in "0123456789"}


def wide(text: str) -> str:
    return text.translate(FULL_WIDTH)


MODELS = sorted(CAT.models)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
hostile_text = st.text(max_size=60) | st.sampled_from(
    [
        wide("2"),
        "1_0",
        " 7 ",
        "NaN",
        "Infinity",
        "-1",
        "1e3",
        "16:9",
        wide("16:9"),
        "1024x1024",
        wide("1024x1024"),
        "{}",
    ]
)
field_value = hostile_text | st.lists(hostile_text, max_size=3) | json_values
raw_fields = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), field_value, max_size=8)
fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _plan(options: EditOptions, model: str, images: int, first: tuple[int, int]) -> EditPlan:
    return plan_edit(options, CAT.models[model], model, image_count=images, first_image=first)


DEEP = "[" * 1900 + "]" * 1900


@fast
@given(raw_fields)
@example({"prompt": "x", "metadata": DEEP})
@example({"prompt": "x", "metadata": {"a": float("nan")}})
@example({"prompt": "x", "size": wide("1024x1024")})
def test_parse_options_only_refuses_with_invalid_request(values: dict[str, Any]) -> None:
    try:
        options = parse_options(values)
    except InvalidRequest:
        return
    assert isinstance(options, EditOptions)
    assert options.prompt.strip() == options.prompt


@fast
@given(
    raw_fields,
    st.sampled_from(MODELS),
    st.integers(min_value=1, max_value=20),
    st.tuples(st.integers(min_value=1, max_value=12000), st.integers(min_value=1, max_value=12000)),
)
def test_plan_edit_only_refuses_with_invalid_request(
    values: dict[str, Any], model: str, images: int, first: tuple[int, int]
) -> None:
    try:
        options = parse_options({"prompt": "make it rain", **values})
        plan = _plan(options, model, images, first)
    except InvalidRequest:
        return
    assert 1 <= plan.n <= CAT.models[model].max_n
    assert EditPlan.from_dict(plan.to_dict()) == plan


valid = st.fixed_dictionaries(
    {"prompt": st.text(min_size=1, max_size=80).filter(lambda t: t.strip() and "\x00" not in t)},
    optional={
        "n": st.integers(min_value=1, max_value=10),
        "strength": st.sampled_from(STRENGTHS),
        "priority": st.sampled_from(PRIORITIES),
        "aspect_ratio": st.sampled_from(["match_input", "16:9", "4:5", "1:1", "3:2"]),
        "quality": st.sampled_from(["low", "medium", "high", "auto"]),
        "output_format": st.sampled_from(["png", "jpeg", "webp"]),
        "webhook_events": st.lists(st.sampled_from(EVENTS), min_size=1, max_size=5, unique=True),
        "max_cost_usd": st.decimals(min_value=0, max_value=1000, places=6).map(str),
        "metadata": st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=20), max_size=5),
        "reuse": st.booleans(),
    },
)


def _as_form(values: dict[str, Any]) -> dict[str, list[str]]:
    """The same request as multipart form fields (lists of strings)."""
    form: dict[str, list[str]] = {}
    for name, value in values.items():
        if name == "metadata":
            form[name] = [json.dumps(value)]
        elif name == "webhook_events":
            form[name] = [",".join(value)]
        elif isinstance(value, bool):
            form[name] = ["true" if value else "false"]
        else:
            form[name] = [str(value)]
    return form


@fast
@given(valid)
def test_valid_options_round_trip(values: dict[str, Any]) -> None:
    options = parse_options(values)
    assert options.prompt == values["prompt"].strip()
    assert options.n == values.get("n", 1)
    assert options.strength == values.get("strength")
    assert options.priority == values.get("priority")  # none given: the tenant's default decides
    assert options.metadata == values.get("metadata", {})
    assert list(options.webhook_events) == values.get("webhook_events", list(options.webhook_events))
    assert parse_options(_as_form(values)) == options


@fast
@given(valid, st.sampled_from(["gpt-image-1-mini", "gpt-image-2"]))
def test_valid_options_plan_as_asked(values: dict[str, Any], model: str) -> None:
    options = parse_options({k: v for k, v in values.items() if k != "output_format"})
    plan = _plan(options, model, 1, (1200, 800))
    assert plan.n == options.n
    assert plan.strength == options.strength
    assert plan.prompt.endswith(options.prompt)
    assert plan.quality == (options.quality or "auto")
    assert EditPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"n": wide("2")}, "invalid_parameter"),
        ({"n": ["1_0"]}, "invalid_parameter"),
        ({"output_compression": wide("50")}, "invalid_parameter"),
        ({"max_cost_usd": wide("1")}, "invalid_parameter"),
        ({"max_cost_usd": "1_000"}, "invalid_parameter"),
        ({"metadata": DEEP}, "metadata_too_deep"),
        ({"metadata": {"a": json.loads("[" * 900 + "]" * 900)}}, "metadata_too_deep"),
        ({"metadata": '{"a": NaN}'}, "invalid_metadata"),
        ({"metadata": '{"a": [Infinity]}'}, "invalid_metadata"),
        ({"metadata": {"a": float("inf")}}, "invalid_metadata"),
        ({"webhook_url": "https://example.com/\r\nX-Evil: 1"}, "invalid_webhook_url"),
        ({"webhook_url": "https://example.com/\n"}, "invalid_webhook_url"),
    ],
)
def test_hostile_values_are_refused(values: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_options({"prompt": "x", **values})
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [("aspect_ratio", wide("16:9"), "invalid_aspect_ratio"), ("size", wide("1024x1024"), "unsupported_size")],
)
def test_full_width_digits_in_geometry_are_refused(field: str, value: str, code: str) -> None:
    options = parse_options({"prompt": "x", field: value})
    with pytest.raises(InvalidRequest) as refused:
        _plan(options, "gpt-image-2", 1, (1200, 800))
    assert refused.value.code == code
