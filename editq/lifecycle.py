"""Which model a job runs on: the default chain, retirements, and what the account serves.

A job that names a model gets exactly that model, or a clear refusal: `model_retired` (naming
the successor) or `model_unavailable` (naming what the account serves). A job that names none
runs on the first model of the default chain that is live and served: the configured default
(`EDITQ_DEFAULT_MODEL`) or the catalogue's, then its successor, and so on. Falling through the
chain is never silent: the job, `/readyz` and the startup banner say why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from editq.catalogue import Catalogue, Model, Resolution
from editq.errors import InvalidRequest, Unavailable

#: A model retiring within this many days is announced (banner, `/readyz`, job answers).
RETIREMENT_NOTICE_DAYS = 14


@dataclass(frozen=True)
class Availability:
    """What the provider account serves, as last learned from it."""

    #: Catalogue names the account lists; None until a listing succeeded (everything assumed).
    served: frozenset[str] | None = None
    #: Models whose calls answered 404 `model_not_found` since the last listing.
    unavailable: frozenset[str] = frozenset()
    refreshed_at_ms: int | None = None

    def serves(self, name: str) -> bool:
        if name in self.unavailable:
            return False
        return self.served is None or name in self.served

    def names(self, catalogue: Catalogue) -> list[str]:
        return [name for name in catalogue.models if self.serves(name)]


@dataclass(frozen=True)
class Choice:
    """The model a job runs on, and why, when it is not the one asked for."""

    resolution: Resolution
    explicit: bool
    note: str | None = None


def _why_not(model: Model, availability: Availability, today: date) -> str | None:
    if model.retired(today):
        assert model.retires_on is not None
        return f"was retired on {model.retires_on.isoformat()}"
    if model.name in availability.unavailable:
        return "answered model_not_found"
    if not availability.serves(model.name):
        return "is not served by the provider account"
    return None


def choose(
    catalogue: Catalogue,
    requested: str | None,
    *,
    configured_default: str | None,
    aliases: dict[str, str],
    availability: Availability,
    today: date,
) -> Choice:
    """The model for a job that asked for `requested` (None: the default chain)."""
    if requested is None:
        return default_choice(
            catalogue,
            configured_default,
            aliases=aliases,
            availability=availability,
            today=today,
        )
    resolution = catalogue.resolve(requested, aliases=aliases, today=today)
    if not availability.serves(resolution.model.name):
        served = availability.names(catalogue)
        raise InvalidRequest(
            "model_unavailable",
            f"{resolution.model.name} is not served by this provider account; it serves "
            f"{', '.join(served) or 'none of the catalogued models'}",
            "model",
            served=served,
        )
    return Choice(resolution, explicit=True)


def default_choice(
    catalogue: Catalogue,
    configured: str | None,
    *,
    aliases: dict[str, str],
    availability: Availability,
    today: date,
) -> Choice:
    """The first live, served model of the default chain."""
    start = configured or catalogue.default
    found = catalogue.find(start, aliases)
    if found is None:
        raise Unavailable(
            "no_model_available", f"the default model {start!r} is not in the catalogue", retry_after=60
        )
    model, api_name = found
    skipped: list[str] = []
    seen = {model.name}
    while (why := _why_not(model, availability, today)) is not None:
        skipped.append(f"{model.name} {why}")
        nxt = catalogue.find(model.successor, aliases) if model.successor else None
        if nxt is None or nxt[0].name in seen:
            raise Unavailable(
                "no_model_available",
                "no model of the default chain is live and served: " + "; ".join(skipped),
                retry_after=60,
            )
        model, api_name = nxt
        seen.add(model.name)
    note = None
    if skipped:
        note = f"the default model {'; '.join(skipped)}; running on {model.name}"
    return Choice(Resolution(requested=start, model=model, api_name=api_name), False, note)


def successor_choice(
    catalogue: Catalogue, model_name: str, *, availability: Availability, today: date
) -> Choice | None:
    """Where a job that took `model_name` by default goes once that model is unavailable."""
    model = catalogue.models.get(model_name)
    if model is None or model.successor is None:
        return None
    try:
        choice = default_choice(
            catalogue, model.successor, aliases={}, availability=availability, today=today
        )
    except Unavailable:
        return None
    why = _why_not(model, availability, today) or "is unavailable"
    note = f"{model_name} {why}; running on its successor {choice.resolution.model.name}"
    return Choice(choice.resolution, explicit=False, note=note)


def retiring(catalogue: Catalogue, today: date, days: int = RETIREMENT_NOTICE_DAYS) -> list[Model]:
    return [m for m in catalogue.models.values() if m.retiring_within(today, days)]


def report(
    catalogue: Catalogue,
    *,
    configured_default: str | None,
    aliases: dict[str, str],
    availability: Availability,
    today: date,
) -> dict[str, Any]:
    """The model situation, for `/readyz`, the startup banner and `GET /v1/models`."""
    try:
        choice = default_choice(
            catalogue, configured_default, aliases=aliases, availability=availability, today=today
        )
        default, note, problem = choice.resolution.model.name, choice.note, None
    except Unavailable as exc:
        default, note, problem = None, None, exc.message
    return {
        "default": default,
        "default_note": note,
        "default_problem": problem,
        "configured_default": configured_default,
        "chain_start": configured_default or catalogue.default,
        "served": None if availability.served is None else sorted(availability.served),
        "unavailable": sorted(availability.unavailable),
        "refreshed_at_ms": availability.refreshed_at_ms,
        "retiring_soon": [
            {
                "model": m.name,
                "retires_on": m.retires_on.isoformat() if m.retires_on else None,
                "days_left": (m.retires_on - today).days if m.retires_on else None,
                "successor": m.successor,
            }
            for m in retiring(catalogue, today)
        ],
    }


def announcements(state: dict[str, Any]) -> list[str]:
    """Lines for the startup banner and logs, from `report`."""
    lines = []
    if state["default_problem"]:
        lines.append(f"no default model: {state['default_problem']}")
    elif state["default_note"]:
        lines.append(state["default_note"])
    for item in state["retiring_soon"]:
        successor = f"; its successor is {item['successor']}" if item["successor"] else ""
        lines.append(
            f"{item['model']} retires on {item['retires_on']} (in {item['days_left']} days){successor}"
        )
    return lines
