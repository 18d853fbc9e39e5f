"""`editq run` (what `make run` calls) serves the whole stack; the `editq` command drives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from editq.ops import launcher
from tests import images
from tests.support import run
from tests.support.stack import Universe


def _editq(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "editq.tools.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in found.stdout.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _kill_worker_and_see_it_restarted(run_pid: int, log: Path) -> None:
    """A worker that dies is restarted by `editq run`; the rest of the stack keeps running."""
    workers = [p for p in _children(run_pid) if "editq.tools.cli worker" in _cmdline(p)]
    assert len(workers) == 1
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while "worker restarted" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    again = [p for p in _children(run_pid) if "editq.tools.cli worker" in _cmdline(p)]
    assert again, log.read_text()[-2000:]
    assert again != workers


def test_editq_run_serves_and_stops_cleanly(tmp_path: Path) -> None:
    ports = run.free_ports()
    proc = run.start(tmp_path, ports)
    try:
        launcher.wait_for_http(f"http://127.0.0.1:{ports['api']}/readyz", timeout=90)
        key = (tmp_path / "state" / "dev-api-key").read_text().strip()
        launcher.wait_for_worker(f"redis://127.0.0.1:{ports['redis']}/0", "editq", 1, timeout=60)
        source = tmp_path / "photo.png"
        source.write_bytes(images.scene())
        curl = subprocess.run(
            [
                "curl",
                "-s",
                "-w",
                "\n%{http_code}",
                "-X",
                "POST",
                f"http://127.0.0.1:{ports['api']}/v1/edits",
                "-H",
                f"Authorization: Bearer {key}",
                "-F",
                f"image=@{source}",
                "-F",
                "prompt=make it a pencil sketch",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        body, status = curl.stdout.rsplit("\n", 1)
        assert status == "202", curl.stdout
        job_id = json.loads(body)["id"]
        with httpx.Client(
            base_url=f"http://127.0.0.1:{ports['api']}", headers={"Authorization": f"Bearer {key}"}
        ) as c:
            deadline = time.monotonic() + 30
            job = c.get(f"/v1/edits/{job_id}").json()
            while job["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
                time.sleep(0.2)
                job = c.get(f"/v1/edits/{job_id}").json()
            assert job["status"] == "succeeded", job
            output = images.decode(c.get(job["outputs"][0]["url"]).content)
            assert images.mean_difference(images.decode(images.scene()), output) > 20
        auth = (tmp_path / "state" / "flower-auth").read_text().strip().split(":", 1)
        launcher.wait_for_http(f"http://127.0.0.1:{ports['flower']}/healthcheck", timeout=60)
        assert (
            httpx.get(
                f"http://127.0.0.1:{ports['flower']}/api/workers", auth=(auth[0], auth[1]), timeout=20
            ).status_code
            == 200
        )
        assert not [pid for pid in _children(proc.pid) if auth[1] in _cmdline(pid)], "password in argv"
        _kill_worker_and_see_it_restarted(proc.pid, tmp_path / "run.log")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    text = (tmp_path / "run.log").read_text()
    assert "API key" in text
    assert proc.returncode == 0, text[-3000:]
    for port in ports.values():
        try:
            launcher.wait_for_port(port, timeout=0.5)
        except TimeoutError:
            continue
        raise AssertionError(f"port {port} still open after editq run stopped")


def test_cli_admin_and_client(stack: Universe, tmp_path: Path) -> None:
    env = {**stack.env, "EDITQ_API_URL": stack.api_url}
    name = f"cli{os.getpid()}"
    created = json.loads(
        _editq("tenants", "create", name, "--budget-usd-day", "5", "--weight", "2", env=env).stdout
    )
    assert created["budgets_usd"]["day"] == "5.000000"
    assert created["webhook_secret"].startswith("whsec_")
    assert _editq("tenants", "create", name, env=env, check=False).returncode == 1
    key = _editq("keys", "create", name, env=env).stdout.strip()
    env["EDITQ_API_KEY"] = key
    source = tmp_path / "in.png"
    source.write_bytes(images.scene())
    out = tmp_path / "out"
    result = _editq(
        "submit", str(source), "--prompt", "make it vintage", "--wait", "--out", str(out), "--json", env=env
    )
    assert list(out.glob("*.png"))
    job_id = json.loads(result.stdout)["id"]
    status = json.loads(_editq("status", job_id, "--json", env=env).stdout)
    assert status["status"] == "succeeded"
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(images.scene(200 + i, 150))
    batch = _editq("submit", str(folder), "--prompt", "black and white", "--wait", env=env)
    assert batch.stdout.count("succeeded") == 3
    usage = json.loads(_editq("usage", "--group-by", "model", "--json", env=env).stdout)
    assert usage["groups"][0]["model"] == "gpt-image-1-mini"
    assert usage["groups"][0]["jobs_settled"] == 4
    shown = json.loads(_editq("tenants", "show", name, env=env).stdout)
    assert shown["weight"] == 2
    assert len(shown["keys"]) == 1
    _editq("keys", "revoke", key, env=env)
    refused = _editq("status", job_id, env=env, check=False)
    assert refused.returncode == 1
    assert "invalid_api_key" in refused.stderr
