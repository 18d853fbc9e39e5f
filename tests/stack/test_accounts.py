"""Pooled provider accounts on the real stack: routing by model, a paused account's jobs moving
to the others, recovery by probe, and the one-account shorthand."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from editq.storage import limiter
from tests import images
from tests.support.stack import PrivateSim, Universe

_jobs = itertools.count()
IMAGE = ("a.png", images.scene(64, 48), "image/png")
KEYS = {"SIM_KEY_A": "sk-sim-a", "SIM_KEY_B": "sk-sim-b"}


def _pool(sim: PrivateSim, *accounts: tuple[str, list[str]], **prices: float) -> dict[str, str]:
    """Settings for a pool of simulated accounts `/a/{name}/v1` (name, models; price_factor by name)."""
    spec = [
        {
            "name": name,
            "kind": "openai",
            "base_url": f"{sim.base}/a/{name}/v1",
            "api_key_env": f"SIM_KEY_{name.upper()}",
            "models": models,
            "ipm": 6000,
            "rpm": 6000,
            "max_inflight": 8,
            "price_factor": prices.get(name, 1.0),
        }
        for name, models in accounts
    ]
    return {**KEYS, "EDITQ_PROVIDER_ACCOUNTS": json.dumps(spec)}


def _account(sim: PrivateSim, name: str, **changes: object) -> None:
    httpx.post(f"{sim.base}/a/{name}/_sim/config", json=changes, timeout=10).raise_for_status()


def _stats(sim: PrivateSim, name: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{sim.base}/a/{name}/_sim/stats", timeout=10).json()
    return result


def _submit(client: httpx.Client, **data: str) -> str:
    """A job of its own (a new prompt each time, so no earlier output is reused)."""
    prompt = f"rain {next(_jobs)}"
    response = client.post("/v1/edits", data={"prompt": prompt, **data}, files=[("image", IMAGE)])
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "editq.tools.cli", *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def _state(u: Universe, name: str) -> dict[str, Any]:
    return next(a for a in limiter.state(u.db)["accounts"] if a["name"] == name)


def test_jobs_go_to_an_account_that_serves_their_model(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    sim = make_sim()
    u = make_stack(workers=1, beat=False, **_pool(sim, ("a", ["gpt-image-1-mini"]), ("b", ["gpt-image-1.5"])))
    _, key = u.tenant()
    with u.client(key) as client:
        minis = [_submit(client, model="gpt-image-1-mini") for _ in range(3)]
        bigs = [_submit(client, model="gpt-image-1.5", quality="low") for _ in range(2)]
        done = {i: u.wait_job(client, i) for i in minis + bigs}
        ready = httpx.get(f"{u.api_url}/readyz", timeout=10).json()
        scraped = httpx.get(f"{u.api_url}/metrics", timeout=10).text
    with u.admin() as admin:
        listed = admin.get("/v1/admin/provider").json()["data"]
    printed = _cli("provider", env=u.env)
    assert {done[i]["status"] for i in done} == {"succeeded"}
    assert {done[i]["account"] for i in minis} == {"a"}
    assert {done[i]["account"] for i in bigs} == {"b"}
    assert _stats(sim, "a")["by_model"] == {"gpt-image-1-mini": 3}
    assert _stats(sim, "b")["by_model"] == {"gpt-image-1.5": 2}
    assert [a["name"] for a in ready["checks"]["provider"]["accounts"]] == ["a", "b"]
    assert 'editq_account_ipm_limit{account="b"} 6000.0' in scraped
    assert 'editq_account_paused{account="a",reason=""} 0.0' in scraped
    assert [(a["name"], a["models"], a["state"]) for a in listed] == [
        ("a", ["gpt-image-1-mini"], "ok"),
        ("b", ["gpt-image-1.5"], "ok"),
    ]
    assert [line.split()[:3] for line in printed.splitlines()[1:]] == [
        ["a", "openai", "6000"],
        ["b", "openai", "6000"],
    ]


def test_an_account_out_of_quota_pauses_and_its_jobs_move_to_the_others(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    sim = make_sim()
    pool = _pool(sim, ("a", ["gpt-image-1-mini"]), ("b", ["gpt-image-1-mini"]))
    u = make_stack(workers=1, beat=False, EDITQ_ACCOUNT_PAUSE_SECONDS="1", **pool)
    _account(sim, "a", quota_exhausted=True)
    _, key = u.tenant()
    with u.client(key) as client:
        ids = [_submit(client) for _ in range(12)]
        done = [u.wait_job(client, i) for i in ids]
    assert [j["status"] for j in done] == ["succeeded"] * 12
    assert {j["account"] for j in done} == {"b"}
    assert _stats(sim, "a")["by_status"].get("429", 0) >= 1
    assert _stats(sim, "b")["by_status"] == {"200": 12}
    # the paused account: once its quota is back, a probe call ends the pause
    _account(sim, "a", quota_exhausted=False)
    deadline = time.monotonic() + 30
    with u.client(key) as client:
        while _state(u, "a")["state"] != "ok":
            assert time.monotonic() < deadline, _state(u, "a")
            u.wait_job(client, _submit(client))
    assert _stats(sim, "a")["by_status"].get("200", 0) >= 1


def test_a_paused_account_takes_no_work_until_its_probe(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    sim = make_sim()
    pool = _pool(sim, ("a", ["gpt-image-1-mini"]), ("b", ["gpt-image-1-mini"]))
    u = make_stack(workers=1, beat=False, EDITQ_ACCOUNT_PAUSE_SECONDS="60", **pool)
    _account(sim, "a", quota_exhausted=True)
    _, key = u.tenant()
    with u.client(key) as client:
        first = [u.wait_job(client, _submit(client)) for _ in range(4)]
        refused = _stats(sim, "a")["requests"]
        state = _state(u, "a")
        later = [u.wait_job(client, _submit(client)) for _ in range(6)]
    assert [j["status"] for j in first + later] == ["succeeded"] * 10
    assert state["paused"]
    assert state["pause_reason"] == "insufficient_quota"
    assert _stats(sim, "a")["requests"] == refused  # nothing more went to the paused account
    assert limiter.state(u.db)["paused"] is False  # the pool as a whole is not


def test_the_one_account_shorthand_is_the_account_named_default(stack: Universe) -> None:
    (only,) = limiter.state(stack.db)["accounts"]
    assert (only["name"], only["ipm_configured"], only["models"]) == ("default", 100000, None)
    _, key = stack.tenant()
    with stack.client(key) as client:
        job = stack.wait_job(client, _submit(client))
    assert (job["status"], job["account"]) == ("succeeded", "default")


def test_sustained_server_errors_pause_an_account_and_its_retries_move(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    sim = make_sim()
    pool = _pool(sim, ("a", ["gpt-image-1-mini"]), ("b", ["gpt-image-1-mini"]))
    u = make_stack(workers=1, beat=False, EDITQ_ACCOUNT_ERROR_THRESHOLD="2", **pool)
    _account(sim, "a", fail_rate=1.0)
    _, key = u.tenant()
    with u.client(key) as client:
        done = [u.wait_job(client, i) for i in [_submit(client) for _ in range(8)]]
    assert [j["status"] for j in done] == ["succeeded"] * 8
    assert {j["account"] for j in done} == {"b"}
    retried = [j for j in done if j["attempts"] > 1]
    assert retried  # the jobs a answered 500 were retried, on b
    state = _state(u, "a")
    assert state["state"] == "paused"
    assert state["pause_reason"] == "server_errors"
    assert set(_stats(sim, "a")["by_status"]) == {"500"}


def test_the_cheapest_account_with_room_goes_first(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    sim = make_sim()
    pool = _pool(sim, ("a", ["gpt-image-1-mini"]), ("b", ["gpt-image-1-mini"]), b=0.5)
    u = make_stack(workers=1, beat=False, **pool)
    _, key = u.tenant()
    with u.client(key) as client:
        done = [u.wait_job(client, _submit(client)) for _ in range(3)]
    assert [j["account"] for j in done] == ["b", "b", "b"]
    assert _stats(sim, "a")["requests"] == 0
