"""Keeps this process's probe file (`editq.probe`): a worker's from a step of its own on
Celery's event loop, beat's from its scheduler."""

from __future__ import annotations

from typing import Any

from celery import bootsteps
from celery.beat import PersistentScheduler, ScheduleEntry

from editq import probe
from editq.probe import Phase, StateFile
from editq.settings import get_settings

_file: StateFile | None = None


def start(role: probe.Role, name: str) -> StateFile:
    global _file
    _file = StateFile(probe.path(get_settings().probe_dir, role, name), role)
    return _file


def redis_reached(ok: bool) -> None:
    if _file is not None:
        _file.redis_reached(ok)


def phase(value: Phase) -> None:
    if _file is not None:
        _file.phase(value)


def finish() -> None:
    """The process is done: no file says otherwise."""
    global _file
    if _file is not None:
        _file.remove()
        _file = None


class LoopProbe(bootsteps.StartStopStep):
    """Marks the probe file from the worker's event loop, which turns only while the worker
    takes tasks from the broker (a thread of its own would go on beating in a stuck worker)."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        state = start("worker", str(worker.hostname).split("@", 1)[0])
        self.tref = worker.timer.call_repeatedly(probe.LOOP_SECONDS, state.loop_turned)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()


class ProbedScheduler(PersistentScheduler):
    """Beat's scheduler, marking the probe file on every tick (at least every
    `probe.LOOP_SECONDS`) and after every publish to Redis."""

    def setup_schedule(self) -> None:
        super().setup_schedule()
        self.max_interval = int(min(self.max_interval or probe.LOOP_SECONDS, probe.LOOP_SECONDS))
        start("beat", "editq").phase("ready")

    def tick(self, *args: Any, **kwargs: Any) -> float:
        delay = super().tick(*args, **kwargs)
        if _file is not None:
            _file.loop_turned()
        return delay

    def apply_async(
        self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        try:
            result = super().apply_async(entry, producer, advance, **kwargs)
        except Exception:
            redis_reached(False)
            raise
        redis_reached(True)
        return result

    def close(self) -> None:
        super().close()
        finish()
