"""The model catalogue: what each image-edit model accepts, what it costs, when it retires.

The shipped data lives in `editq/data/models.json`; an operator file (`EDITQ_CATALOGUE`) is
merged over it model by model, so a price, a retirement date or a whole new model can be set
without touching editq.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

from editq.errors import InvalidRequest

STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536")
#: `owned_by` of every catalogued model in OpenAI's model listing.
OWNER = "openai"
PRICE_FIELDS = (
    "text_input",
    "text_input_cached",
    "image_input",
    "image_input_cached",
    "image_output",
    "text_output",
)


class Lane(StrEnum):
    """How a job reaches the provider, which decides the prices it pays."""

    INTERACTIVE = "interactive"  #: one synchronous call, as soon as the limiter allows
    ECONOMY = "economy"  #: a line of an OpenAI Batch API file: half price, within 24 hours


@dataclass(frozen=True)
class ArbitrarySizes:
    """Bounds for free-form `WxH` sizes."""

    multiple_of: int
    min_edge: int
    max_edge: int
    max_pixels: int
    min_ratio: Fraction
    max_ratio: Fraction


@dataclass(frozen=True)
class Prices:
    """USD per 1M tokens, which is micro-dollars per token. None: not confirmed by any source."""

    text_input: Fraction | None
    text_input_cached: Fraction | None
    image_input: Fraction | None
    image_input_cached: Fraction | None
    image_output: Fraction | None
    text_output: Fraction | None

    @property
    def complete(self) -> bool:
        return None not in (self.text_input, self.image_input, self.image_output)

    def scaled(self, factor: Fraction) -> Prices:
        """Every price times `factor` (unset prices stay unset)."""
        return Prices(
            **{name: None if (p := getattr(self, name)) is None else p * factor for name in PRICE_FIELDS}
        )


@dataclass(frozen=True)
class Tariff:
    """What one lane pays for a model: its token prices, and the factor applied to the model's
    published per-image prices (which estimates use as a floor)."""

    lane: Lane
    prices: Prices
    per_image_factor: Fraction = Fraction(1)


@dataclass(frozen=True)
class Model:
    """One catalogued model."""

    name: str
    description: str
    sizes: tuple[str, ...]
    arbitrary_sizes: ArbitrarySizes | None
    qualities: tuple[str, ...]
    output_formats: tuple[str, ...]
    backgrounds: tuple[str, ...]
    input_fidelity: bool
    max_images: int
    max_n: int
    prompt_max_chars: int
    prices: Prices
    prices_confirmed: bool
    #: `official` (OpenAI's own pages) or `secondary` (pages that quote them).
    prices_basis: str
    per_image_prices: dict[str, dict[str, Fraction]]
    output_tokens: dict[str, dict[str, int]]
    #: Set for free-form sizes: output tokens are bounded by area from `output_tokens`, times this.
    output_tokens_area_factor: Fraction | None
    input_tokens_confirmed: bool
    #: The fidelity the provider bills input images at whatever is asked (gpt-image-2: high).
    input_fidelity_billed: str | None
    extra_text_tokens_per_image: int
    max_text_output_tokens: int
    retires_on: date | None
    deprecated_on: date | None
    successor: str | None
    snapshots: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)
    #: When the provider released it (`created` in OpenAI's model listing).
    released_on: date | None = None
    #: Prices in the economy lane (OpenAI's Batch API); None: the model has no batch route.
    batch_prices: Prices | None = None
    #: The batch discount, also applied to the published per-image prices.
    batch_discount: Fraction | None = None

    def tariff(self, lane: Lane) -> Tariff:
        """The prices `lane` pays; refuses the economy lane for a model without a batch route."""
        if lane is Lane.INTERACTIVE:
            return Tariff(lane, self.prices)
        if self.batch_prices is None:
            raise InvalidRequest(
                "economy_unsupported",
                f"{self.name} has no batch route, so it cannot run with priority=economy",
                "priority",
            )
        return Tariff(lane, self.batch_prices, self.batch_discount or Fraction(1))

    def retired(self, today: date) -> bool:
        return self.retires_on is not None and today >= self.retires_on

    def retiring_within(self, today: date, days: int) -> bool:
        """Live today, but retired within `days` days."""
        return (
            self.retires_on is not None and not self.retired(today) and (self.retires_on - today).days <= days
        )

    def public(self) -> dict[str, Any]:
        """The model as `GET /v1/models` shows it: OpenAI's model object, then editq's fields."""
        released = self.released_on
        return {
            "id": self.name,
            "object": "model",
            "created": 0 if released is None else _epoch(released),
            "owned_by": OWNER,
            "description": self.description,
            "sizes": list(self.sizes),
            "arbitrary_sizes": None
            if self.arbitrary_sizes is None
            else {
                "multiple_of": self.arbitrary_sizes.multiple_of,
                "min_edge": self.arbitrary_sizes.min_edge,
                "max_edge": self.arbitrary_sizes.max_edge,
                "max_pixels": self.arbitrary_sizes.max_pixels,
                "min_ratio": str(self.arbitrary_sizes.min_ratio),
                "max_ratio": str(self.arbitrary_sizes.max_ratio),
            },
            "qualities": list(self.qualities),
            "output_formats": list(self.output_formats),
            "backgrounds": list(self.backgrounds),
            "input_fidelity": self.input_fidelity,
            "max_images": self.max_images,
            "max_n": self.max_n,
            "prompt_max_chars": self.prompt_max_chars,
            "prices_usd_per_1m_tokens": {
                name: None if getattr(self.prices, name) is None else _decimal(getattr(self.prices, name))
                for name in PRICE_FIELDS
            },
            "prices_confirmed": self.prices_confirmed,
            "prices_basis": self.prices_basis,
            "economy": self.batch_prices is not None,
            "batch_prices_usd_per_1m_tokens": None
            if self.batch_prices is None
            else {
                name: None if (p := getattr(self.batch_prices, name)) is None else _decimal(p)
                for name in PRICE_FIELDS
            },
            "input_tokens_confirmed": self.input_tokens_confirmed,
            "retires_on": self.retires_on.isoformat() if self.retires_on else None,
            "successor": self.successor,
            "snapshots": list(self.snapshots),
        }


@dataclass(frozen=True)
class Resolution:
    """A requested model name resolved to the catalogued model and the name sent upstream."""

    requested: str
    model: Model
    api_name: str

    @property
    def sunset(self) -> date | None:
        return self.model.retires_on


@dataclass(frozen=True)
class Catalogue:
    """All catalogued models, by name and by snapshot name."""

    models: dict[str, Model]
    snapshots: dict[str, str]
    #: The first model of the default chain (then its successor, and so on).
    default: str

    def find(self, name: str, aliases: dict[str, str]) -> tuple[Model, str] | None:
        """The catalogued model `name` stands for (through aliases and snapshots) and the name
        sent upstream, or None."""
        target = aliases.get(name, name)
        model = self.models.get(self.snapshots.get(target, target))
        return None if model is None else (model, target)

    def canonical(self, provider_id: str) -> str | None:
        """The catalogue name of a model id the provider lists (a name or a snapshot)."""
        name = self.snapshots.get(provider_id, provider_id)
        return name if name in self.models else None

    def resolve(self, requested: str, *, aliases: dict[str, str], today: date) -> Resolution:
        """The model to call for `requested`, honouring operator aliases and retirements."""
        found = self.find(requested, aliases)
        if found is None:
            known = ", ".join(sorted(self.models))
            raise InvalidRequest(
                "model_not_found", f"unknown model {requested!r}; available: {known}", "model"
            )
        model, target = found
        if model.retired(today):
            assert model.retires_on is not None
            successor = f"; use {model.successor} instead" if model.successor else ""
            raise InvalidRequest(
                "model_retired",
                f"{model.name} was retired on {model.retires_on.isoformat()}{successor} "
                "(operators can map the old name to another model with EDITQ_MODEL_ALIASES)",
                "model",
                successor=model.successor,
            )
        return Resolution(requested=requested, model=model, api_name=target)


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _decimal(value: Fraction) -> str:
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _fraction(value: Any) -> Fraction | None:
    if value is None:
        return None
    result = Fraction(str(value))
    if result < 0:
        raise ValueError(f"negative price {value!r}")
    return result


def _date(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(str(value))


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _model(name: str, raw: dict[str, Any]) -> Model:
    arbitrary = raw.get("arbitrary_sizes")
    prices = raw.get("prices") or {}
    input_tokens = raw.get("input_tokens") or {}
    notes = {key: str(value) for key, value in raw.items() if key.endswith(("_note", "_source"))}
    notes.update({f"input_tokens_{k}": str(v) for k, v in input_tokens.items() if k == "source"})
    parsed_prices = Prices(**{name: _fraction(prices.get(name)) for name in PRICE_FIELDS})
    batch_prices, batch_discount = _batch(raw.get("batch"), parsed_prices)
    return Model(
        name=name,
        description=str(raw.get("description", "")),
        sizes=tuple(raw["sizes"]),
        arbitrary_sizes=None
        if not arbitrary
        else ArbitrarySizes(
            multiple_of=int(arbitrary["multiple_of"]),
            min_edge=int(arbitrary["min_edge"]),
            max_edge=int(arbitrary["max_edge"]),
            max_pixels=int(arbitrary["max_pixels"]),
            min_ratio=Fraction(str(arbitrary["min_ratio"])),
            max_ratio=Fraction(str(arbitrary["max_ratio"])),
        ),
        qualities=tuple(raw["qualities"]),
        output_formats=tuple(raw["output_formats"]),
        backgrounds=tuple(raw["backgrounds"]),
        input_fidelity=bool(raw.get("input_fidelity", False)),
        max_images=int(raw["max_images"]),
        max_n=int(raw["max_n"]),
        prompt_max_chars=int(raw["prompt_max_chars"]),
        prices=parsed_prices,
        prices_confirmed=bool(raw.get("prices_confirmed", False)) and parsed_prices.complete,
        prices_basis=str(raw.get("prices_basis", "official")),
        per_image_prices={
            quality: {size: Fraction(str(usd)) for size, usd in by_size.items()}
            for quality, by_size in (raw.get("per_image_prices") or {}).items()
        },
        output_tokens={q: dict(by_size) for q, by_size in raw["output_tokens"].items()},
        output_tokens_area_factor=_fraction(raw.get("output_tokens_area_factor")),
        input_tokens_confirmed=bool(input_tokens.get("confirmed", False)),
        input_fidelity_billed=raw.get("input_fidelity_billed"),
        extra_text_tokens_per_image=int(raw.get("extra_text_tokens_per_image", 0)),
        max_text_output_tokens=int(raw.get("max_text_output_tokens", 0)),
        retires_on=_date(raw.get("retires_on")),
        deprecated_on=_date(raw.get("deprecated_on")),
        successor=raw.get("successor"),
        snapshots=tuple(raw.get("snapshots", ())),
        notes=notes,
        released_on=_date(raw.get("released_on")),
        batch_prices=batch_prices,
        batch_discount=batch_discount,
    )


def _batch(raw: Any, prices: Prices) -> tuple[Prices | None, Fraction | None]:
    """A model's batch prices: each standard price times `discount`, where `prices` does not
    set one of its own. No `batch` entry: no batch route."""
    if not raw:
        return None, None
    discount = _fraction(raw.get("discount", "1"))
    assert discount is not None
    if not 0 < discount <= 1:
        raise ValueError(f"a batch discount is a factor in (0, 1], not {discount}")
    scaled = prices.scaled(discount)
    own = raw.get("prices") or {}
    return Prices(
        **{name: _fraction(own[name]) if name in own else getattr(scaled, name) for name in PRICE_FIELDS}
    ), discount


def parse(data: dict[str, Any]) -> Catalogue:
    """Build a catalogue from its JSON form (shipped data merged with any override)."""
    defaults = data.get("defaults", {})
    models: dict[str, Model] = {}
    snapshots: dict[str, str] = {}
    for name, raw in data.get("models", {}).items():
        model = _model(name, _merge(defaults, raw))
        models[name] = model
        for snapshot in model.snapshots:
            snapshots[snapshot] = name
    default = str(data.get("default") or next(iter(models), ""))
    if default not in models:
        raise ValueError(f"the catalogue's default {default!r} is not a catalogued model")
    for model in models.values():
        if model.successor is not None and model.successor not in models:
            raise ValueError(f"{model.name}'s successor {model.successor!r} is not catalogued")
    return Catalogue(models=models, snapshots=snapshots, default=default)


def shipped_data() -> dict[str, Any]:
    text = resources.files("editq").joinpath("data/models.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@functools.cache
def load(override: Path | None = None) -> Catalogue:
    """The shipped catalogue, with the operator's override file merged over it."""
    data = shipped_data()
    if override is not None:
        extra = json.loads(Path(override).read_text(encoding="utf-8"))
        data = _merge(data, {k: v for k, v in extra.items() if k in ("default", "defaults", "models")})
    return parse(data)
