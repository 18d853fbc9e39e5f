"""`editq probe` against real processes: a worker that is ready, frozen, draining and gone;
beat; the API; a Flower that is not there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from editq.ops import launcher
from tests import images
from tests.support.stack import PrivateSim, Universe

#: How long the provider call takes that SIGTERM interrupts: the draining worker is probed
#: meanwhile.
CALL_SECONDS = 10


def _probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _probes(env, list(args))[0]


def _probes(env: dict[str, str], *calls: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Several probes at once (each is a process of its own, as a kubelet runs them)."""
    running = [
        (
            args,
            subprocess.Popen(
                [sys.executable, "-m", "editq.tools.cli", "probe", *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args in calls
    ]
    done = []
    for args, proc in running:
        out, err = proc.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def _until(env: dict[str, str], args: list[str], code: int, says: str = "", timeout: float = 90.0) -> str:
    """Probe until it exits with `code` (and prints `says`); its output."""
    deadline = time.monotonic() + timeout
    while True:
        done = _probe(env, *args)
        if done.returncode == code and says in done.stdout:
            return done.stdout
        assert time.monotonic() < deadline, f"probe {args} never exited {code}: {done.stdout}{done.stderr}"
        time.sleep(0.5)


def test_probes_follow_real_processes(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim], tmp_path: Path
) -> None:
    sim = make_sim()
    u = make_stack(workers=1, OPENAI_BASE_URL=sim.url, EDITQ_PROBE_DIR=str(tmp_path))
    env, worker = u.env, u.workers[0]
    ready, live = ["worker", "--name", worker.name], ["worker", "--name", worker.name, "--live"]
    assert _until(env, ready, 0).strip() == "ok: worker: ready"
    # beat writes its probe file on its first tick, which may come after the worker is ready
    assert _until(env, ["beat"], 0).strip() == "ok: beat: ready"
    port = env["EDITQ_API_PORT"]
    api, api_live, flower = _probes(
        env,
        ["api", "--port", port],
        ["api", "--live", "--port", port],
        ["flower", "--port", str(launcher.free_port()), "--timeout", "2"],
    )
    assert (api.returncode, api_live.returncode) == (0, 0), api.stdout + api_live.stdout
    assert flower.returncode == 1
    assert flower.stdout.startswith("unhealthy: flower: ")

    os.kill(worker.pid, signal.SIGSTOP)  # a stuck worker: its event loop no longer turns
    try:
        assert "main loop stalled" in _until(env, [*live, "--max-age", "6"], 1)
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    _until(env, [*live, "--max-age", "6"], 0)

    sim(latency_min=CALL_SECONDS, latency_max=CALL_SECONDS)
    _, key = u.tenant()
    with u.client(key) as client:
        answer = client.post(
            "/v1/edits", files={"image": ("a.png", images.scene(), "image/png")}, data={"prompt": "rain"}
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        u.wait_job(client, job_id, until=("running",))
        worker.signal(signal.SIGTERM)  # warm shutdown while the call is in flight
        draining = _probes(env, ready, live)
        assert [p.returncode for p in draining] == [1, 0], draining
        assert all("stopping" in p.stdout for p in draining), draining
        assert worker.popen.wait(120) == 0
        assert u.wait_job(client, job_id)["status"] == "succeeded"
    gone = _probe(env, *live)
    assert gone.returncode == 1
    assert "no probe file" in gone.stdout


def test_a_redis_outage_makes_a_worker_unready_but_never_unlive(
    private: tuple[Universe, Path, int, launcher.Proc, launcher.Proc], tmp_path: Path
) -> None:
    """While Redis is away Celery reconnects on the event loop's thread, so the loop stands
    still: the recorded Redis failure keeps the worker live (a restart would not bring Redis
    back), and the loop turns again once Redis is back."""
    u, _, redis_port, redis, _ = private
    u.env["EDITQ_PROBE_DIR"] = str(tmp_path / "probe")
    worker = u.start_worker(4)
    ready = ["worker", "--name", worker.name]
    live = [*ready, "--live", "--max-age", "6"]
    state = tmp_path / "probe" / f"worker-{worker.name}.json"
    _until(u.env, ready, 0)
    redis.stop()
    again: launcher.Proc | None = None
    try:
        assert "Redis" in _until(u.env, ready, 1)
        deadline = time.monotonic() + 90
        while time.time() - json.loads(state.read_text())["loop_at"] <= 8:  # the loop stands still
            assert time.monotonic() < deadline, "the event loop kept turning without Redis"
            time.sleep(0.5)
        outage = _probe(u.env, *live)
        assert (outage.returncode, "waiting for Redis" in outage.stdout) == (0, True), outage.stdout
        again = launcher.redis_server(redis_port, tmp_path / "redis-again", echo=False)
        assert _until(u.env, ready, 0).strip() == "ok: worker: ready"
        _until(u.env, live, 0, says="ok: worker: live\n")  # the loop turns again
    finally:
        if again is not None:
            again.stop()
