"""editq's Lua scripts against a real redis-server."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from editq.errors import PaymentRequired
from editq.storage import money, tenants
from editq.storage.backend import Backend
from editq.storage.keys import TEMPLATES, parameters
from editq.storage.records import LUA_NAMES, PARTS, Entry, Slot, UsageField
from editq.storage.redis import _source, prelude
from tests.support.stack import Services, universe


@pytest.fixture
def db(services: Services):  # type: ignore[no-untyped-def]
    u = universe(services)
    yield u.db
    u.stop()


def test_civil_dates_match_python(db) -> None:  # type: ignore[no-untyped-def]
    lib = _source("hold").split("\n-- Reserve", 1)[0]
    script = db.redis.register_script(lib + "\nlocal d, m = civil(tonumber(ARGV[2]))\nreturn {d, m}")
    rng = random.Random(1)
    samples = [0, 951782400000, 1709164800000, 1798675199999, 1798675200000, 4102444800000]
    samples += [rng.randrange(0, 4102444800000) for _ in range(300)]
    for ms in samples:
        day = datetime.fromtimestamp(ms / 1000, UTC).date()
        assert script(keys=[], args=[db.keys.prefix, 0, ms]) == [day.isoformat(), day.isoformat()[:7]], ms


def test_holds_never_exceed_a_budget_and_release_cleanly(db) -> None:  # type: ignore[no-untyped-def]
    tenants.create(db, "acme", budgets={"day": 1000, "month": 5000, "total": None})
    held = [money.hold(db, "acme", 300) for _ in range(3)]
    with pytest.raises(PaymentRequired) as refused:
        money.hold(db, "acme", 300)
    assert refused.value.code == "budget_exceeded"
    assert refused.value.extra["period"] == "day"
    assert refused.value.extra["remaining_usd"] == "0.000100"
    assert money.release_hold(db, held[0].id)
    assert not money.release_hold(db, held[0].id)
    money.hold(db, "acme", 400)
    now = money.budgets(db, "acme", {"day": 1000, "month": 5000, "total": None})
    assert now["day"]["reserved_usd"] == "0.001000"
    assert now["day"]["remaining_usd"] == "0.000000"
    assert now["total"]["limit_usd"] is None


def test_lapsed_holds_are_released(db) -> None:  # type: ignore[no-untyped-def]
    tenants.create(db, "slow", budgets={"day": 100})
    result = db.scripts.run("hold", "slow", "h1", 100, -1)  # already lapsed
    assert result[0] == "ok"
    assert money.expire_holds(db) == 1
    assert money.budgets(db, "slow", {"day": 100})["day"]["reserved_usd"] == "0.000000"


def test_idempotency_script(db) -> None:  # type: ignore[no-untyped-def]
    run = db.scripts.run
    assert run("idempotency", "t", "k", "fp", "begin", 60) == ["new"]
    assert run("idempotency", "t", "k", "fp", "begin", 60) == ["in_flight"]
    assert run("idempotency", "t", "k", "other", "begin", 60) == ["mismatch"]
    assert run("idempotency", "u", "k", "other", "begin", 60) == ["new"]
    run("idempotency", "t", "k", "fp", "abort", 60)
    assert run("idempotency", "t", "k", "fp", "begin", 60) == ["new"]


def _builders(db: Backend) -> Any:
    """A script that calls one generated builder: ARGV = prefix, table (K or R), name, parts..."""
    table = "local T = ({K = K, R = R})[ARGV[2]]\nreturn T[ARGV[3]](unpack(ARGV, 4))"
    return db.redis.register_script(prelude() + "\n" + table)


def test_every_lua_key_builder_matches_its_python_twin(db) -> None:  # type: ignore[no-untyped-def]
    call = _builders(db)
    for name in TEMPLATES:
        parts = [f"part{i}" for i in range(len(parameters(name)))]
        assert call(keys=[], args=[db.keys.prefix, "K", name, *parts]) == db.keys.build(name, *parts), name
    for priority in ("interactive", "batch", ""):
        lane = call(keys=[], args=[db.keys.prefix, "K", "lane", priority])
        assert call(keys=[], args=[db.keys.prefix, "K", "queue", "acme", lane]) == db.keys.queue(
            "acme", priority
        )


def test_every_lua_record_builder_matches_its_python_twin(db) -> None:  # type: ignore[no-untyped-def]
    call = _builders(db)
    for kind, names in PARTS.items():
        parts = {name: f"{name}-x" for name in names}
        lua = call(keys=[], args=[db.keys.prefix, "R", LUA_NAMES[kind], *parts.values()])
        assert lua == Entry(kind, **parts).format(), kind
        assert Entry.parse(lua) == Entry(kind, **parts)
    assert call(keys=[], args=[db.keys.prefix, "R", "slot", "acme", "j1"]) == Slot("acme", "j1").format()
    field = call(keys=[], args=[db.keys.prefix, "R", "usage_field", "gpt-image-1", "spent"])
    assert field == UsageField("gpt-image-1", "spent").format()
