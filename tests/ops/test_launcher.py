"""`editq run` restarts a process that exits, with backoff, instead of stopping everything."""

from __future__ import annotations

import time

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
