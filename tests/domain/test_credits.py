"""Credit arithmetic: exact integers, rounded up once, an estimate that bounds the charge, and
price lists with wildcards."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from editq.credits import Plan, Terms, decimal_text, quote
from editq.errors import InvalidRequest

MARKUP = Plan("resale", credit_micros=10_000, markup_ppm=250_000)
PRICES = Plan(
    "list",
    credit_micros=1_000,
    per_image={
        "gpt-image-1-mini": {"1024x1024": {"low": 2, "*": 5}, "*": {"high": 9}},
        "*": {"*": {"*": 20}},
    },
)


def test_a_markup_charges_cost_times_one_plus_markup_over_the_credit_rounded_up() -> None:
    terms = MARKUP.terms("gpt-image-1-mini", "1024x1024", "low")
    # $0.013428 x 1.25 = $0.016785, at $0.01 a credit: 1.6785 -> 2
    assert terms.credits(13_428, 1) == 2
    assert terms.credits(8_000, 1) == 1  # exactly 1.0: no rounding up
    assert terms.credits(8_001, 1) == 2
    assert terms.credits(0, 1) == 0
    assert terms.credits(None, 1) is None


@given(
    cost=st.integers(0, 10**12),
    credit=st.integers(1, 10**12),
    markup=st.integers(0, 100 * 10**6),
)
def test_markup_credits_are_the_exact_ceiling(cost: int, credit: int, markup: int) -> None:
    terms = Terms("p", credit, markup_ppm=markup)
    exact = Fraction(cost) * (1 + Fraction(markup, 10**6)) / credit
    assert terms.credits(cost, 1) == math.ceil(exact)


@given(estimate=st.integers(0, 10**9), actual=st.integers(0, 10**9))
def test_charging_the_actual_cost_never_exceeds_the_credits_reserved_for_the_estimate(
    estimate: int, actual: int
) -> None:
    terms = MARKUP.terms("m", "s", "q")
    bounded = min(estimate, actual)
    assert (terms.credits(bounded, 1) or 0) <= (terms.credits(estimate, 1) or 0)


def test_price_lists_match_exactly_then_by_wildcard_and_count_images() -> None:
    assert PRICES.terms("gpt-image-1-mini", "1024x1024", "low").credits(None, 3) == 6
    assert PRICES.terms("gpt-image-1-mini", "1024x1024", "high").credits(None, 1) == 5
    assert PRICES.terms("gpt-image-1-mini", "1536x1024", "high").credits(None, 2) == 18
    assert PRICES.terms("gpt-image-2", "2048x1152", "auto").credits(10**9, 1) == 20


def test_a_price_list_without_a_price_refuses_not_in_plan() -> None:
    with pytest.raises(InvalidRequest) as refused:
        PRICES.terms("gpt-image-1-mini", "1536x1024", "low")
    assert refused.value.code == "not_in_plan"
    assert refused.value.extra == {"plan": "list"}


def test_a_quote_is_the_terms_and_the_upper_bound() -> None:
    found = quote(PRICES, "gpt-image-1-mini", "1024x1024", "low", 4, None)
    assert (found.terms.per_image, found.credits) == (2, 8)
    assert quote(MARKUP, "gpt-image-1", "auto", "auto", 2, 52_950).credits == 7  # 6.61875 -> 7
    with pytest.raises(InvalidRequest) as refused:
        quote(MARKUP, "unpriced", "auto", "auto", 1, None)
    assert refused.value.code == "model_price_unknown"


def test_terms_and_plans_round_trip_through_their_records() -> None:
    for plan in (MARKUP, PRICES):
        assert Plan.from_record(plan.to_record()) == plan
        terms = plan.terms("gpt-image-1-mini", "1024x1024", "low")
        assert Terms.from_json(terms.to_json()) == terms
    assert Terms.from_json("") is None


def test_a_plan_has_a_markup_or_a_price_list() -> None:
    with pytest.raises(ValueError, match="not both or neither"):
        Plan("x", 1, markup_ppm=1, per_image={"*": {"*": {"*": 1}}})
    with pytest.raises(ValueError, match="not both or neither"):
        Plan("x", 1)
    with pytest.raises(ValueError, match="at least"):
        Plan("x", 0, markup_ppm=0)


@pytest.mark.parametrize(
    ("ppm", "text"), [(0, "0"), (250_000, "0.25"), (1_000_000, "1"), (1, "0.000001"), (12_500_000, "12.5")]
)
def test_markups_read_back_as_plain_decimals(ppm: int, text: str) -> None:
    assert decimal_text(ppm) == text
    assert MARKUP.public()["markup"] == "0.25"
    assert MARKUP.public()["credit_usd"] == "0.010000"
