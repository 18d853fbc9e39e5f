"""The probe file a worker or beat keeps, and what `editq probe` concludes from it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from editq import probe
from editq.settings import Settings, get_settings
from editq.tools import cli

NOW = 1_800_000_000.0
READY_AGE = 30.0


def _write(tmp_path: Path, **state: Any) -> Path:
    target = tmp_path / "worker-editq.json"
    base: dict[str, Any] = {
        "role": "worker",
        "pid": os.getpid(),
        "phase": "ready",
        "started_at": NOW - 600,
        "loop_at": NOW - 2,
        "redis_ok_at": NOW - 5,
        "redis_failed_at": None,
    }
    target.write_text(json.dumps({**base, **state}))
    return target


def _both(target: Path) -> tuple[probe.Verdict, probe.Verdict]:
    live = probe.check(target, ready=False, ready_age=READY_AGE, now=NOW)
    ready = probe.check(target, ready=True, ready_age=READY_AGE, now=NOW)
    return live, ready


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_turning_loop_that_reaches_redis_is_live_and_ready(tmp_path: Path) -> None:
    live, ready = _both(_write(tmp_path))
    assert live == probe.Verdict(True, "live")
    assert ready == probe.Verdict(True, "ready")


@pytest.mark.parametrize(
    ("state", "live_reason", "ready_reason"),
    [
        ({"loop_at": NOW - 120}, "main loop stalled for 120 s", "main loop stalled for 120 s"),
        ({"phase": "starting"}, "live", "starting"),
        ({"redis_ok_at": NOW - 45}, "live", "Redis not reached for 45 s"),
        ({"redis_ok_at": None}, "live", "Redis not reached"),
        ({"redis_ok_at": NOW - 20, "redis_failed_at": NOW - 3}, "live", "Redis failed 3 s ago"),
    ],
)
def test_what_is_not_ready_and_why(
    tmp_path: Path, state: dict[str, Any], live_reason: str, ready_reason: str
) -> None:
    live, ready = _both(_write(tmp_path, **state))
    assert live.reason == live_reason
    assert live.healthy == (not live_reason.startswith("main loop stalled"))
    assert ready == probe.Verdict(False, ready_reason)


def test_a_loop_stalled_by_a_redis_outage_is_still_live(tmp_path: Path) -> None:
    """Celery reconnects to the broker on the loop's own thread: a recent Redis failure explains
    a loop standing still, and restarting the worker would not bring Redis back."""
    target = _write(tmp_path, loop_at=NOW - 300, redis_ok_at=NOW - 310, redis_failed_at=NOW - 40)
    live, ready = _both(target)
    assert live == probe.Verdict(True, "live, waiting for Redis (failed 40 s ago)")
    assert not ready.healthy
    older = _write(tmp_path, loop_at=NOW - 300, redis_ok_at=NOW - 310, redis_failed_at=NOW - 90)
    assert not probe.check(older, ready=False, ready_age=READY_AGE, now=NOW).healthy


def test_a_stopping_worker_is_live_but_not_ready(tmp_path: Path) -> None:
    live, ready = _both(_write(tmp_path, phase="stopping", loop_at=NOW - 200))
    assert live == probe.Verdict(True, "stopping: finishing the work it holds")
    assert ready == probe.Verdict(False, "stopping: finishing the work it holds")


def test_a_file_left_by_a_dead_process_is_neither(tmp_path: Path) -> None:
    pid = _dead_pid()
    live, ready = _both(_write(tmp_path, pid=pid))
    assert live == ready == probe.Verdict(False, f"process {pid} is not running")


@pytest.mark.parametrize(
    "content",
    [
        None,
        "",
        "{not json",
        "[1, 2]",
        '{"pid": "1"}',
        '{"pid": 0}',  # os.kill(0, 0) would ask about the probe's own process group
        '{"pid": -1}',  # and -1 about every process it may signal
        '{"pid": true}',
        '{"pid": 1, "pad": "' + "x" * probe.MAX_FILE_BYTES + '"}',  # oversize: read no further
    ],
)
def test_missing_or_broken_files_are_unhealthy(tmp_path: Path, content: str | None) -> None:
    target = tmp_path / "worker-editq.json"
    if content is not None:
        target.write_text(content)
    live, ready = _both(target)
    assert not live.healthy
    assert not ready.healthy
    assert str(target) in live.reason


def test_the_state_file_is_rewritten_whole_and_removed(tmp_path: Path) -> None:
    target = probe.path(tmp_path / "probes", "worker", "w1")
    state = probe.StateFile(target, "worker")
    first = json.loads(target.read_text())
    assert first["pid"] == os.getpid()
    assert first["phase"] == "starting"
    state.redis_reached(True)
    state.phase("ready")
    state.loop_turned()
    after = json.loads(target.read_text())
    assert after["phase"] == "ready"
    assert after["redis_ok_at"] >= first["started_at"]
    assert after["loop_at"] >= first["loop_at"]
    assert probe.check(target, ready=True, ready_age=READY_AGE).healthy
    assert [p.name for p in target.parent.iterdir()] == ["worker-w1.json"], "no scratch file left"
    state.remove()
    assert not target.exists()


def test_an_unwritable_folder_never_breaks_the_process(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    state = probe.StateFile(blocker / "worker-editq.json", "worker")
    state.loop_turned()
    state.remove()
    assert state.warned


def test_ready_ages_follow_the_heartbeats() -> None:
    settings = Settings.model_validate({"EDITQ_LEASE_SECONDS": "12", "EDITQ_HOUSEKEEPING_SECONDS": "20"})
    assert probe.ready_seconds(settings, "worker") == 12
    assert probe.ready_seconds(settings, "beat") == 60


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "1e400", "sixty", ""])
def test_the_probe_command_refuses_nonsense_ages(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["probe", "worker", "--max-age", value])
    assert exit_.value.code == 2
    assert "--max-age" in capsys.readouterr().err


def test_the_probe_command_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EDITQ_PROBE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        _write(tmp_path, loop_at=time.time(), redis_ok_at=time.time())
        assert cli.main(["probe", "worker"]) == 0
        assert cli.main(["probe", "worker", "--name", "other"]) == 1
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ok: worker: ready"
    assert out[1].startswith("unhealthy: worker: no probe file ")
