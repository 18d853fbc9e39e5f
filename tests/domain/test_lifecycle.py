"""The default chain, retirements, what the account serves, and the one clock."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from editq import catalogue, lifecycle
from editq.clock import Clock, offset_to
from editq.errors import EditqError
from editq.lifecycle import Availability

CAT = catalogue.load()
TODAY = date(2026, 11, 26)
AFTER = date(2026, 12, 2)
EVERYTHING = Availability()
NO_MINI = Availability(served=frozenset({"gpt-image-1.5", "gpt-image-2"}))


def _choose(
    requested: str | None,
    *,
    today: date = TODAY,
    availability: Availability = EVERYTHING,
    default: str | None = None,
    aliases: dict[str, str] | None = None,
) -> lifecycle.Choice:
    return lifecycle.choose(
        CAT,
        requested,
        configured_default=default,
        aliases=aliases or {},
        availability=availability,
        today=today,
    )


def _refused(requested: str | None, **kwargs: object) -> EditqError:
    with pytest.raises(EditqError) as refused:
        _choose(requested, **kwargs)  # type: ignore[arg-type]
    return refused.value


def test_the_chain_starts_at_mini_while_it_is_live_and_served() -> None:
    choice = _choose(None)
    assert choice.resolution.model.name == "gpt-image-1-mini"
    assert not choice.explicit
    assert choice.note is None


def test_after_retirement_the_chain_runs_on_the_successor_and_says_so() -> None:
    choice = _choose(None, today=AFTER)
    assert choice.resolution.model.name == "gpt-image-2"
    assert choice.resolution.api_name == "gpt-image-2"
    assert choice.note is not None
    assert "gpt-image-1-mini was retired on 2026-12-01" in choice.note


def test_a_model_the_account_does_not_serve_is_skipped_today() -> None:
    choice = _choose(None, availability=NO_MINI)
    assert choice.resolution.model.name == "gpt-image-2"
    assert choice.note is not None
    assert "not served" in choice.note
    marked = Availability(unavailable=frozenset({"gpt-image-1-mini"}))
    assert _choose(None, availability=marked).resolution.model.name == "gpt-image-2"


def test_a_configured_default_that_retired_goes_to_its_successor() -> None:
    choice = _choose(None, default="gpt-image-1.5", today=AFTER)
    assert choice.resolution.model.name == "gpt-image-2"
    assert choice.note is not None
    assert "gpt-image-1.5" in choice.note
    assert _choose(None, default="gpt-image-1.5").resolution.model.name == "gpt-image-1.5"


def test_a_configured_default_through_an_alias() -> None:
    choice = _choose(None, default="house", aliases={"house": "gpt-image-2-2026-04-21"})
    assert choice.resolution.model.name == "gpt-image-2"
    assert choice.resolution.api_name == "gpt-image-2-2026-04-21"
    assert choice.note is None


def test_no_model_left_is_a_clear_503() -> None:
    nothing = Availability(served=frozenset())
    refused = _refused(None, availability=nothing)
    assert (refused.code, refused.status) == ("no_model_available", 503)
    assert "gpt-image-1-mini" in refused.message
    assert "gpt-image-2" in refused.message
    unknown = _refused(None, default="dall-e-9")
    assert (unknown.code, unknown.status) == ("no_model_available", 503)


def test_a_named_model_is_never_swapped() -> None:
    retired = _refused("gpt-image-1-mini", today=AFTER)
    assert retired.code == "model_retired"
    assert retired.extra["successor"] == "gpt-image-2"
    unavailable = _refused("gpt-image-1-mini", availability=NO_MINI)
    assert (unavailable.code, unavailable.param, unavailable.status) == ("model_unavailable", "model", 400)
    assert unavailable.extra["served"] == ["gpt-image-1.5", "gpt-image-2"]
    assert "gpt-image-2" in unavailable.message
    named = _choose("gpt-image-1.5")
    assert named.explicit
    assert named.resolution.model.name == "gpt-image-1.5"
    assert _refused("gpt-image-9").code == "model_not_found"


def test_a_successor_for_jobs_that_took_an_unavailable_default() -> None:
    marked = Availability(unavailable=frozenset({"gpt-image-1-mini"}))
    moved = lifecycle.successor_choice(CAT, "gpt-image-1-mini", availability=marked, today=TODAY)
    assert moved is not None
    assert moved.resolution.model.name == "gpt-image-2"
    assert lifecycle.successor_choice(CAT, "gpt-image-2", availability=marked, today=TODAY) is None


def test_retirements_are_announced_for_fourteen_days() -> None:
    assert [m.name for m in lifecycle.retiring(CAT, TODAY)] == ["gpt-image-1-mini", "gpt-image-1.5"]
    assert lifecycle.retiring(CAT, date(2026, 11, 16)) == []
    assert [m.name for m in lifecycle.retiring(CAT, date(2026, 11, 17))] == [
        "gpt-image-1-mini",
        "gpt-image-1.5",
    ]
    assert lifecycle.retiring(CAT, AFTER) == []
    state = lifecycle.report(CAT, configured_default=None, aliases={}, availability=EVERYTHING, today=TODAY)
    assert state["default"] == "gpt-image-1-mini"
    lines = lifecycle.announcements(state)
    assert any("gpt-image-1-mini retires on 2026-12-01 (in 5 days)" in line for line in lines)
    after = lifecycle.report(CAT, configured_default=None, aliases={}, availability=EVERYTHING, today=AFTER)
    assert after["default"] == "gpt-image-2"
    assert after["retiring_soon"] == []
    assert lifecycle.announcements(after) == [after["default_note"]]


def test_the_clock_shifts_every_reading_by_its_offset() -> None:
    moment = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    clock = Clock(offset_to(moment))
    assert clock.today() == date(2026, 12, 2)
    assert abs(clock.time() - moment.timestamp()) < 60
    assert abs(clock.ms() - int(moment.timestamp() * 1000)) < 60_000
    assert Clock(0).offset_ms == 0
    assert Clock(1.5).offset_ms == 1500
