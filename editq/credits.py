"""Credits: what a tenant on a plan pays, in the operator's own unit instead of provider dollars.

A plan prices one credit in USD (`credit_usd`) and charges either a markup on the provider's
cost, `ceil(cost x (1 + markup) / credit_usd)` credits, or from a price list: credits per output
image by model, provider size and quality (`*` matches any). Plans never change once made; a
job keeps the terms it was reserved under (`Terms`), whatever plan its tenant moves to later.
Arithmetic is on integers only: micro-dollars and parts per million.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from editq.cost import usd
from editq.errors import InvalidRequest

#: Parts per million: a markup of 0.25 is 250,000 ppm.
PPM = 1_000_000
#: Matches any model, size or quality in a price list.
WILDCARD = "*"

#: model -> provider size -> quality -> credits per output image
PriceList = dict[str, dict[str, dict[str, int]]]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def decimal_text(ppm: int) -> str:
    """Parts per million as a plain decimal (250000 -> "0.25")."""
    text = format(Decimal(ppm) / PPM, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _lookup(table: dict[str, Any], key: str) -> Any:
    return table.get(key, table.get(WILDCARD))


@dataclass(frozen=True)
class Terms:
    """The plan terms one job is reserved and charged under: a markup, or its price per image."""

    plan: str
    credit_micros: int
    markup_ppm: int | None = None
    per_image: int | None = None

    def credits(self, cost_micros: int | None, images: int) -> int | None:
        """Credits for `images` output images costing `cost_micros` (None: cost unknown, so a
        markup plan cannot price it)."""
        if self.per_image is not None:
            return self.per_image * images
        if cost_micros is None or self.markup_ppm is None:
            return None
        return _ceil_div(cost_micros * (PPM + self.markup_ppm), self.credit_micros * PPM)

    def to_json(self) -> str:
        return json.dumps(
            {
                "plan": self.plan,
                "credit_micros": self.credit_micros,
                "markup_ppm": self.markup_ppm,
                "per_image": self.per_image,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Terms | None:
        if not text:
            return None
        data = json.loads(text)
        return cls(data["plan"], int(data["credit_micros"]), data.get("markup_ppm"), data.get("per_image"))


@dataclass(frozen=True)
class Plan:
    """A way of selling edits in credits. Exactly one of `markup_ppm` and `per_image` is set."""

    name: str
    credit_micros: int
    markup_ppm: int | None = None
    per_image: PriceList | None = None
    created_at: int = 0

    def __post_init__(self) -> None:
        if (self.markup_ppm is None) == (self.per_image is None):
            raise ValueError("a plan has a markup or a price list, not both or neither")
        if self.credit_micros < 1:
            raise ValueError("a credit is worth at least $0.000001")

    def terms(self, model: str, size: str, quality: str) -> Terms:
        """The terms for a job on `model` at `size` and `quality`, or 400 `not_in_plan`."""
        if self.per_image is None:
            return Terms(self.name, self.credit_micros, markup_ppm=self.markup_ppm)
        price = _lookup(_lookup(_lookup(self.per_image, model) or {}, size) or {}, quality)
        if price is None:
            raise InvalidRequest(
                "not_in_plan",
                f"the plan {self.name!r} has no price for {model} at {size}, quality {quality}",
                "model",
                plan=self.name,
            )
        return Terms(self.name, self.credit_micros, per_image=int(price))

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "credit_usd": usd(self.credit_micros),
            "markup": None if self.markup_ppm is None else decimal_text(self.markup_ppm),
            "per_image": self.per_image,
            "created_at": self.created_at,
        }

    def to_record(self) -> dict[str, str]:
        return {
            "name": self.name,
            "credit_micros": str(self.credit_micros),
            "markup_ppm": "" if self.markup_ppm is None else str(self.markup_ppm),
            "per_image": "" if self.per_image is None else json.dumps(self.per_image),
            "created_at": str(self.created_at),
        }

    @classmethod
    def from_record(cls, h: dict[str, str]) -> Plan:
        return cls(
            name=h["name"],
            credit_micros=int(h["credit_micros"]),
            markup_ppm=int(h["markup_ppm"]) if h.get("markup_ppm") else None,
            per_image=json.loads(h["per_image"]) if h.get("per_image") else None,
            created_at=int(h.get("created_at") or 0),
        )


@dataclass(frozen=True)
class Quote:
    """A job's terms and the most it can be charged (the credits reserved at submit)."""

    terms: Terms
    credits: int


def quote(plan: Plan, model: str, size: str, quality: str, n: int, cost_micros: int | None) -> Quote:
    """What a job of `n` images, costing at most `cost_micros`, reserves under `plan`."""
    terms = plan.terms(model, size, quality)
    credits = terms.credits(cost_micros, n)
    if credits is None:
        raise InvalidRequest(
            "model_price_unknown",
            f"{model} has no confirmed prices, so it cannot run under the markup plan {plan.name!r}; "
            "the operator sets them in the catalogue (EDITQ_CATALOGUE)",
            "model",
        )
    return Quote(terms, credits)
