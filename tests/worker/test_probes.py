"""`editq probe` against real processes: a worker that is ready, frozen, draining and gone;
beat; the API; a Flower that is not there."""

from __future__ import annotations

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


def _until(env: dict[str, str], args: list[str], code: int, timeout: float = 90.0) -> str:
    """Probe until it exits with `code`; its output."""
    deadline = time.monotonic() + timeout
    while True:
        done = _probe(env, *args)
        if done.returncode == code:
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
    port = env["EDITQ_API_PORT"]
    beat, api, api_live, flower = _probes(
        env,
        ["beat"],
        ["api", "--port", port],
        ["api", "--live", "--port", port],
        ["flower", "--port", str(launcher.free_port()), "--timeout", "2"],
    )
    assert (beat.returncode, beat.stdout.strip()) == (0, "ok: beat: ready")
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
