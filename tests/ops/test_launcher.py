"""`editq run` restarts a process that exits, with backoff, instead of stopping everything, and
stops its processes stage by stage."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from editq.ops import launcher


def _short_lived() -> launcher.Proc:
    return launcher.spawn("blip", ["sleep", "0"], echo=False)


def test_an_exited_process_is_restarted_with_doubling_backoff() -> None:
    said: list[str] = []
    stack = launcher.Stack()
    first = stack.add(_short_lived)
    first.popen.wait(5)
    unit = stack.units[0]
    stack.supervise(said.append)
    assert "restarting in 1s" in said[-1]
    assert unit.due is not None
    unit.due = time.monotonic()  # the backoff has passed
    stack.supervise(said.append)
    assert "restarted" in said[-1]
    assert stack.procs[0] is not first
    stack.procs[0].popen.wait(5)
    unit.started = time.monotonic()  # it died again at once: the next wait is longer
    stack.supervise(said.append)
    assert "restarting in 2s" in said[-1]
    stack.stop()


def test_a_failed_restart_is_tried_again_later() -> None:
    said: list[str] = []
    calls = {"n": 0}

    def flaky() -> launcher.Proc:
        calls["n"] += 1
        if calls["n"] == 2:
            raise TimeoutError("port still taken")
        return _short_lived()

    stack = launcher.Stack()
    stack.add(flaky).popen.wait(5)
    unit = stack.units[0]
    stack.supervise(said.append)
    unit.due = time.monotonic()
    stack.supervise(said.append)
    assert "did not start again" in said[-1]
    assert unit.due is not None
    stack.stop()


def _stubborn(folder: Path) -> Callable[[], launcher.Proc]:
    """A process that ignores SIGTERM (the disposition survives exec), once it says so."""

    def start() -> launcher.Proc:
        log = folder / "stubborn.log"
        proc = launcher.spawn(
            "stubborn", ["sh", "-c", "trap '' TERM; echo armed; exec sleep 60"], echo=False, log=log
        )
        deadline = time.monotonic() + 30
        while not (log.exists() and "armed" in log.read_text()):
            assert time.monotonic() < deadline, "the shell never set its trap"
            time.sleep(0.02)
        return proc

    return start


def _polite(name: str) -> Callable[[], launcher.Proc]:
    return lambda: launcher.spawn(name, ["sleep", "60"], echo=False)


def test_the_stack_stops_stage_by_stage_and_kills_what_outlives_its_grace(tmp_path: Path) -> None:
    said: list[str] = []
    stack = launcher.Stack()
    stack.add(_polite("redis"), launcher.Stage.STORAGE)
    stack.add(_polite("beat"), launcher.Stage.WATCHERS)
    stack.add(_stubborn(tmp_path), launcher.Stage.WORKERS, grace=0.5)
    stack.add(_polite("api"), launcher.Stage.API)
    stack.stop(said.append)
    assert stack.stopped == ["api", "stubborn", "beat", "redis"]
    assert "stubborn still running: killed" in said
    assert not [proc for proc in stack.procs if proc.alive()]


def test_a_second_signal_hurries_a_long_drain(tmp_path: Path) -> None:
    said: list[str] = []
    hurry = threading.Event()
    stack = launcher.Stack()
    stack.add(_stubborn(tmp_path), launcher.Stage.WORKERS, grace=600)
    threading.Timer(0.5, hurry.set).start()
    stack.stop(said.append, hurry)
    assert stack.stopped == ["stubborn"]
    assert "stubborn still running: killed" in said
