"""The model lifecycle through the real stack: after gpt-image-1-mini retires, with a provider
account that does not serve it, and when a call answers 404 `model_not_found`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from editq import cost
from editq.clock import offset_to
from editq.storage import models as model_store
from editq.storage import tenants
from tests import images
from tests.api.test_bad_input import _leftovers
from tests.support.stack import PINNED_OFFSET, PrivateSim, Universe

SOURCE = ("a.png", images.scene(1200, 800), "image/png")
#: The day after gpt-image-1-mini and gpt-image-1.5 retired.
AFTER = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SERVED_WITHOUT_MINI = "gpt-image-1.5,gpt-image-2"


def _submit(client: httpx.Client, **data: str) -> httpx.Response:
    return client.post("/v1/edits", data={"prompt": "make it nighttime", **data}, files=[("image", SOURCE)])


def _gpt_image_2_price(usage: dict[str, Any]) -> int:
    u = cost.Usage.from_api(usage)
    return math.ceil(u.text_input * 5 + u.image_input * 8 + u.image_output * 30 + u.text_output * 10)


def _after_retirement(make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]) -> Universe:
    offset = f"{offset_to(AFTER):.3f}"
    sim = make_sim("--clock-offset", offset)
    u = make_stack(OPENAI_BASE_URL=sim.url, EDITQ_CLOCK_OFFSET=offset)
    u.wait_for_model_listing()
    return u


def test_after_retirement_jobs_without_a_model_run_on_gpt_image_2(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    u = _after_retirement(make_stack, make_sim)
    _, key = u.tenant(budgets={"day": 2_000_000, "month": 10_000_000})
    with u.client(key) as client:
        response = _submit(client, quality="medium")
        assert response.status_code == 202, response.text
        assert "sunset" not in response.headers
        done = u.wait_job(client, response.json()["id"])
        spent = client.get("/v1/usage").json()["budgets"]
    assert done["status"] == "succeeded", done
    assert (done["model"], done["model_called"], done["model_requested"]) == (
        "gpt-image-2",
        "gpt-image-2",
        None,
    )
    assert "gpt-image-1-mini was retired on 2026-12-01" in done["model_note"]
    expected = _gpt_image_2_price(done["cost"]["usage"])
    assert expected > 0
    assert done["cost"]["actual_usd"] == cost.usd(expected)
    assert spent["day"]["spent_usd"] == cost.usd(expected)
    assert spent["day"]["reserved_usd"] == "0.000000"
    assert u.db.clock.today() == AFTER.date()


def test_after_retirement_a_job_naming_mini_is_refused_and_leaves_nothing(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    u = _after_retirement(make_stack, make_sim)
    tenant, key = u.tenant(budgets={"day": 2_000_000})
    with u.client(key) as client:
        response = _submit(client, model="gpt-image-1-mini")
        listed = client.get("/v1/models").json()
        ready = client.get("/readyz").json()
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"], error["successor"]) == ("model_retired", "model", "gpt-image-2")
    assert "gpt-image-2" in error["message"]
    assert _leftovers(u, tenant) == []
    assert listed["default"] == "gpt-image-2"
    assert "retired" in listed["default_note"]
    mini = next(m for m in listed["data"] if m["id"] == "gpt-image-1-mini")
    assert (mini["retired"], mini["served"]) == (True, False)
    assert ready["checks"]["models"]["default"] == "gpt-image-2"
    assert ready["checks"]["models"]["retiring_soon"] == []


def test_an_account_that_does_not_serve_mini(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    sim = make_sim("--models", SERVED_WITHOUT_MINI)
    u = make_stack(OPENAI_BASE_URL=sim.url)
    models = u.wait_for_model_listing()
    assert models["served"] == ["gpt-image-1.5", "gpt-image-2"]
    assert models["default"] == "gpt-image-2"
    tenant, key = u.tenant()
    with u.client(key) as client:
        refused = _submit(client, model="gpt-image-1-mini")
        assert _leftovers(u, tenant) == []
        accepted = _submit(client)
        assert accepted.status_code == 202, accepted.text
        done = u.wait_job(client, accepted.json()["id"])
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["served"]) == ("model_unavailable", ["gpt-image-1.5", "gpt-image-2"])
    assert done["status"] == "succeeded", done
    assert done["model"] == "gpt-image-2"
    assert "not served" in done["model_note"]
    assert sim.stats()["by_model"] == {"gpt-image-2": 1}


def test_a_404_fails_the_job_free_and_queued_default_jobs_move_to_the_successor(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    sim = make_sim()
    u = make_stack(OPENAI_BASE_URL=sim.url)
    u.wait_for_model_listing()
    _, key = u.tenant(budgets={"day": 5_000_000})
    sim(models=["gpt-image-1.5", "gpt-image-2"])  # the account loses mini after the listing
    with u.client(key) as client:
        named = _submit(client, model="gpt-image-1-mini")
        assert named.status_code == 202, named.text
        failed = u.wait_job(client, named.json()["id"])
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "model_unavailable"
        assert failed["cost"]["actual_usd"] == "0.000000"
        assert model_store.availability(u.db).unavailable == frozenset({"gpt-image-1-mini"})
        after = _submit(client)
        assert after.status_code == 202
        assert u.wait_job(client, after.json()["id"])["model"] == "gpt-image-2"
        spent = client.get("/v1/usage").json()["budgets"]["day"]
    assert sim.stats()["by_status"].get("404") == 1
    assert spent["reserved_usd"] == "0.000000"


def test_jobs_queued_for_a_model_the_account_stopped_serving(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    sim = make_sim()
    u = make_stack(OPENAI_BASE_URL=sim.url, workers=0, beat=False)
    _, key = u.tenant(budgets={"day": 5_000_000})
    with u.client(key) as client:
        defaulted = _submit(client)
        named = _submit(client, model="gpt-image-1-mini")
        assert defaulted.json()["model"] == named.json()["model"] == "gpt-image-1-mini"
        sim(models=["gpt-image-1.5", "gpt-image-2"])
        u.start_worker()
        moved = u.wait_job(client, defaulted.json()["id"])
        refused = u.wait_job(client, named.json()["id"])
        spent = client.get("/v1/usage").json()["budgets"]["day"]
    assert moved["status"] == "succeeded", moved
    assert (moved["model"], moved["model_called"]) == ("gpt-image-2", "gpt-image-2")
    assert moved["model_note"] == (
        "gpt-image-1-mini is not served by the provider account; running on its successor gpt-image-2"
    )
    assert moved["cost"]["actual_usd"] == cost.usd(_gpt_image_2_price(moved["cost"]["usage"]))
    assert refused["status"] == "failed"
    assert refused["error"]["code"] == "model_unavailable"
    assert refused["cost"]["actual_usd"] == "0.000000"
    assert sim.stats()["by_model"] == {"gpt-image-2": 1}
    assert spent["reserved_usd"] == "0.000000"
    assert spent["spent_usd"] == moved["cost"]["actual_usd"]


def test_the_simulator_lists_what_it_serves(make_sim: Callable[..., PrivateSim]) -> None:
    today = make_sim("--clock-offset", PINNED_OFFSET)
    after = make_sim("--clock-offset", f"{offset_to(AFTER):.3f}")
    deadline = time.monotonic() + 10
    while True:
        try:
            listed = httpx.get(f"{today.url}/models", timeout=5).json()
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    ids = {m["id"] for m in listed["data"]}
    assert {"gpt-image-1-mini", "gpt-image-2", "gpt-image-2-2026-04-21"} <= ids
    assert "gpt-image-1" not in ids  # retired on 2026-10-23
    later = {m["id"] for m in httpx.get(f"{after.url}/models", timeout=5).json()["data"]}
    assert "gpt-image-1-mini" not in later
    assert "gpt-image-2" in later
    response = httpx.post(
        f"{after.url}/images/edits",
        data={"model": "gpt-image-1-mini", "prompt": "x"},
        files=[("image", SOURCE)],
        timeout=10,
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_a_moved_job_whose_new_estimate_does_not_fit_the_budget_fails_free(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    sim = make_sim()
    u = make_stack(OPENAI_BASE_URL=sim.url, workers=0, beat=False)
    tenant, key = u.tenant(budgets={"day": 5_000_000})
    with u.client(key) as client:
        queued = _submit(client, quality="high").json()
        estimate = round(float(queued["cost"]["estimated_usd"]) * 1_000_000)
        tenants.update(u.db, tenant, budgets={"day": estimate})  # room for mini's estimate only
        sim(models=["gpt-image-1.5", "gpt-image-2"])
        u.start_worker()
        done = u.wait_job(client, queued["id"])
        spent = client.get("/v1/usage").json()["budgets"]["day"]
    assert done["status"] == "failed"
    assert done["error"]["code"] == "budget_exceeded"
    assert done["model"] == "gpt-image-1-mini"
    assert done["cost"]["actual_usd"] == "0.000000"
    assert (spent["reserved_usd"], spent["spent_usd"]) == ("0.000000", "0.000000")
    assert sim.stats()["requests"] == 0
