"""Local health of a worker or beat process, for container probes (`editq probe`).

Each worker and beat process keeps one small JSON file, `EDITQ_PROBE_DIR/<role>-<name>.json`:

- `loop_at`: when its main loop last turned (a worker: Celery's event loop, the one that takes
  tasks from the broker; beat: its scheduler's tick);
- `redis_ok_at`, `redis_failed_at`: when it last reached Redis, and when it last failed to;
- `phase`: `starting`, `ready`, or `stopping` (a warm shutdown finishing its calls).

A probe reads that file and nothing else: no broker round trip and no Redis connection, so it
costs one short process whatever the number of workers, and a Redis outage never has every
worker restarted (a worker's event loop stands still while Celery reconnects to the broker,
and a recent Redis failure says why).

- **live**: the process runs, and its loop turned within `max_age`, or Redis failed within
  `max_age`, or it is stopping (draining is what a stopping worker should do);
- **ready**: live, `ready`, and Redis reached within `ready_age` with no failure since.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from editq.settings import Settings

log = logging.getLogger("editq.probe")

Role = Literal["worker", "beat"]
Phase = Literal["starting", "ready", "stopping"]

#: How often a worker's event loop marks the file.
LOOP_SECONDS = 5.0
#: A loop standing still longer than this (and no Redis failure to explain it) is not live;
#: above the 30 s Celery can wait between two attempts to reconnect to the broker.
LIVE_SECONDS = 60.0
#: A probe file is a few hundred bytes; a probe reads no more than this of one.
MAX_FILE_BYTES = 64 * 1024


def path(folder: Path, role: Role, name: str) -> Path:
    return folder / f"{role}-{name}.json"


def ready_seconds(settings: Settings, role: Role) -> float:
    """How recent the last Redis success must be for `ready`: a worker renews its heartbeat
    every third of a lease; beat publishes housekeeping every `EDITQ_HOUSEKEEPING_SECONDS`."""
    if role == "worker":
        return settings.lease_seconds
    return max(3 * settings.housekeeping_seconds, 30.0)


class StateFile:
    """The file one process keeps up to date. Writes replace it whole and never raise."""

    def __init__(self, target: Path, role: Role) -> None:
        self.path = target
        now = time.time()
        self.state: dict[str, Any] = {
            "role": role,
            "pid": os.getpid(),
            "phase": "starting",
            "started_at": now,
            "loop_at": now,
            "redis_ok_at": None,
            "redis_failed_at": None,
        }
        self.lock = threading.Lock()
        self.warned = False
        self.update()

    def update(self, **changes: object) -> None:
        with self.lock:
            self.state.update(changes)
            scratch = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                scratch.write_text(json.dumps(self.state))
                os.replace(scratch, self.path)
            except OSError as exc:
                if not self.warned:
                    log.warning("probe file %s not written (%s): probes will fail", self.path, exc)
                    self.warned = True

    def loop_turned(self) -> None:
        self.update(loop_at=time.time())

    def redis_reached(self, ok: bool) -> None:
        self.update(**{"redis_ok_at" if ok else "redis_failed_at": time.time()})

    def phase(self, phase: Phase) -> None:
        self.update(phase=phase)

    def remove(self) -> None:
        with self.lock, contextlib.suppress(OSError):
            self.path.unlink()


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _age(state: dict[str, Any], name: str, now: float) -> float | None:
    at = state.get(name)
    return None if not isinstance(at, int | float) else max(0.0, now - at)


def _read(target: Path) -> dict[str, Any] | Verdict:
    try:
        with target.open("rb") as file:
            state = json.loads(file.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES])
    except FileNotFoundError:
        return Verdict(False, f"no probe file {target}: not started, or another EDITQ_PROBE_DIR")
    except (OSError, ValueError) as exc:
        return Verdict(False, f"probe file {target} unreadable: {exc}")
    if not isinstance(state, dict):
        return Verdict(False, f"probe file {target} is not a probe state")
    pid = state.get("pid")
    # bool is an int; 0 and negative pids name process groups, which os.kill would accept
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return Verdict(False, f"probe file {target} is not a probe state")
    return {str(key): value for key, value in state.items()}


def check(
    target: Path, *, ready: bool, max_age: float = LIVE_SECONDS, ready_age: float, now: float | None = None
) -> Verdict:
    """Whether the process that keeps `target` is live (or, with `ready`, ready), and why."""
    state = _read(target)
    if isinstance(state, Verdict):
        return state
    now = time.time() if now is None else now
    live = _live(state, now, max_age)
    if not ready or not live.healthy or state.get("phase") == "stopping":
        return live if not ready else Verdict(False, live.reason)
    return _ready(state, now, ready_age)


def _live(state: dict[str, Any], now: float, max_age: float) -> Verdict:
    if not _running(state["pid"]):
        return Verdict(False, f"process {state['pid']} is not running")
    if state.get("phase") == "stopping":
        return Verdict(True, "stopping: finishing the work it holds")
    loop, failed = _age(state, "loop_at", now), _age(state, "redis_failed_at", now)
    if loop is not None and loop <= max_age:
        return Verdict(True, "live")
    if failed is not None and failed <= max_age:
        return Verdict(True, f"live, waiting for Redis (failed {failed:.0f} s ago)")
    return Verdict(False, f"main loop stalled for {loop or 0:.0f} s")


def _ready(state: dict[str, Any], now: float, ready_age: float) -> Verdict:
    ok, failed = _age(state, "redis_ok_at", now), _age(state, "redis_failed_at", now)
    if state.get("phase") != "ready":
        return Verdict(False, str(state.get("phase")))
    if ok is None or ok > ready_age:
        return Verdict(False, "Redis not reached" + ("" if ok is None else f" for {ok:.0f} s"))
    if failed is not None and failed < ok:
        return Verdict(False, f"Redis failed {failed:.0f} s ago")
    return Verdict(True, "ready")
