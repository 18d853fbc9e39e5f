"""The edit threads the dispatcher hands admitted jobs to, and the task events they send for
Flower (a recording stand-in for Celery's event dispatcher)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from editq.worker.runner import EDIT_TASK, EVENT_FLUSH_SECONDS, Admitted, EditRunner, TaskEvents


class Recorded:
    """Celery's `EventDispatcher` as the runner uses it: send, flush, close."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.flushes = 0
        self.fail = fail
        self.closed = False
        self.connection = self

    def send(self, type_: str, **fields: Any) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.sent.append((type_, fields))

    def flush(self) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.flushes += 1

    def close(self) -> None:
        self.closed = True

    def release(self) -> None:
        pass

    def types(self) -> list[str]:
        return [type_ for type_, _ in self.sent]


class Gate:
    """A job body that blocks until released, noting what ran."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.started: list[str] = []
        self.lock = threading.Lock()

        #: What a finished job's thread admits next, by job id (an `edit.Then` answer).
        self.following: dict[str, Admitted] = {}
        self.may_admit: list[bool] = []

    def __call__(self, job: Admitted, may_admit: Callable[[], bool]) -> tuple[str, Admitted | None]:
        with self.lock:
            self.started.append(job.job_id)
        if not self.open.wait(10):
            raise AssertionError("gate never opened")
        if job.job_id.startswith("boom"):
            raise RuntimeError("provider adapter bug")
        admits = may_admit()  # asked when the job settles, as edit.Then does
        self.may_admit.append(admits)
        return "succeeded", self.following.pop(job.job_id, None) if admits else None


def _until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.005)


def _job(n: int, prefix: str = "job") -> Admitted:
    return Admitted("acme", f"{prefix}{n}", str(n))


def test_each_slot_runs_one_job_and_frees_when_it_ends() -> None:
    gate = Gate()
    runner = EditRunner(2, gate)
    runner.start()
    assert runner.room() == 2
    runner.hand(_job(1))
    runner.hand(_job(2))
    assert runner.room() == 0
    _until(lambda: len(gate.started) == 2)
    assert not runner.wait_for_room(0.05)  # all taken: the dispatcher waits, it does not admit
    gate.open.set()
    assert runner.wait_for_room(5)
    _until(lambda: runner.room() == 2)
    assert runner.close(5)


def test_a_job_that_raises_frees_its_slot_and_reports_a_failed_task() -> None:
    gate = Gate()
    events = Recorded()
    runner = EditRunner(1, gate, TaskEvents(lambda: events))
    runner.start()
    gate.open.set()
    runner.hand(_job(1, "boom"))
    _until(lambda: runner.room() == 1)
    runner.hand(_job(2))
    _until(lambda: runner.room() == 1 and len(events.sent) == 4)
    assert events.types() == ["task-received", "task-failed", "task-received", "task-succeeded"]
    failed = events.sent[1][1]
    assert failed["uuid"] == "boom1.1"
    assert "provider adapter bug" in failed["exception"]
    assert "RuntimeError" in failed["traceback"]
    assert runner.close(5)


def test_close_lets_running_and_handed_jobs_finish_and_takes_no_more() -> None:
    gate = Gate()
    runner = EditRunner(1, gate)
    runner.start()
    runner.hand(_job(1))
    runner.hand(_job(2))  # handed over beyond the slots: it waits its turn
    _until(lambda: gate.started == ["job1"])
    closer = threading.Thread(target=runner.close, args=(10,))
    closer.start()
    _until(lambda: runner.room() == 0)
    assert closer.is_alive()  # waits for the running job
    gate.open.set()
    closer.join(10)
    assert not closer.is_alive()
    assert gate.started == ["job1", "job2"]
    assert runner.room() == 0  # closed: the dispatcher admits nothing more


def test_a_thread_runs_the_job_it_admitted_itself_without_giving_up_its_slot() -> None:
    gate = Gate()
    events = Recorded()
    gate.following = {"job1": _job(2), "job2": _job(3)}
    runner = EditRunner(1, gate, TaskEvents(lambda: events))
    runner.start()
    runner.hand(_job(1))
    gate.open.set()
    _until(lambda: gate.started == ["job1", "job2", "job3"])
    _until(lambda: runner.room() == 1)
    assert gate.may_admit == [True, True, True]
    _until(lambda: len(events.sent) == 6)
    assert [(t, f["uuid"]) for t, f in events.sent] == [
        ("task-received", "job1.1"),
        ("task-succeeded", "job1.1"),
        ("task-received", "job2.2"),
        ("task-succeeded", "job2.2"),
        ("task-received", "job3.3"),
        ("task-succeeded", "job3.3"),
    ]
    assert runner.close(5)


def test_a_worker_told_to_stop_taking_finishes_what_it_runs_and_admits_nothing() -> None:
    gate = Gate()
    gate.following = {"job1": _job(2)}
    runner = EditRunner(2, gate)
    runner.start()
    runner.hand(_job(1))
    _until(lambda: gate.started == ["job1"])
    runner.stop_taking()  # SIGTERM: before Celery's own pool has stopped (close() does it too)
    assert runner.room() == 0
    gate.open.set()
    _until(lambda: gate.may_admit == [False])
    assert runner.close(5)
    assert gate.started == ["job1"]


def test_close_with_no_time_left_reports_the_jobs_still_running() -> None:
    gate = Gate()
    runner = EditRunner(1, gate)
    runner.start()
    runner.hand(_job(1))
    _until(lambda: gate.started == ["job1"])
    assert not runner.close(0.0)
    gate.open.set()


def test_events_carry_what_flower_shows() -> None:
    gate = Gate()
    gate.open.set()
    events = Recorded()
    runner = EditRunner(1, gate, TaskEvents(lambda: events))
    runner.start()
    runner.hand(Admitted("acme", "job_7", "42"))
    _until(lambda: len(events.sent) == 2)
    (received_type, received), (done_type, done) = events.sent
    assert (received_type, done_type) == ("task-received", "task-succeeded")
    assert received["uuid"] == done["uuid"] == "job_7.42"
    assert received["name"] == EDIT_TASK
    assert received["args"] == "['acme', 'job_7', '42']"
    assert done["result"] == "'succeeded'"
    assert done["runtime"] >= 0
    runner.close(5)
    assert events.closed
    assert events.flushes >= 1


def test_events_are_not_sent_while_unwanted_and_a_broker_error_never_reaches_the_job() -> None:
    wanted = [False]
    made: list[Recorded] = []
    broken = [False]

    def make() -> Recorded:
        made.append(Recorded(fail=broken[0]))
        return made[-1]

    gate = Gate()
    gate.open.set()
    runner = EditRunner(1, gate, TaskEvents(make, lambda: wanted[0]))
    runner.start()
    runner.hand(_job(1))
    _until(lambda: runner.room() == 1 and gate.started == ["job1"])
    assert made == []  # nothing made, nothing sent
    wanted[0] = True  # Flower's enable_events
    broken[0] = True  # and the broker refuses publishes
    runner.hand(_job(2))
    _until(lambda: runner.room() == 1 and gate.started == ["job1", "job2"])
    assert len(made) == 2  # each refused send dropped its dispatcher and what it held
    assert all(d.closed for d in made)
    broken[0] = False  # the broker is back: the next event makes a dispatcher that works
    runner.hand(_job(3))
    _until(lambda: runner.room() == 1 and len(made) == 3 and len(made[-1].sent) == 2)
    assert made[-1].types() == ["task-received", "task-succeeded"]
    runner.close(5)


@pytest.mark.parametrize(
    ("elapsed", "flushed"), [(0.0, 0), (EVENT_FLUSH_SECONDS / 2, 0), (EVENT_FLUSH_SECONDS, 1)]
)
def test_buffered_events_are_published_once_they_have_waited(elapsed: float, flushed: int) -> None:
    now = [100.0]
    events = Recorded()
    task_events = TaskEvents(lambda: events, clock=lambda: now[0])
    task_events.received(_job(1))  # makes the dispatcher, buffers one event
    now[0] += elapsed
    task_events.flush()
    assert events.flushes == flushed
    task_events.flush(force=True)
    assert events.flushes == flushed + 1


def test_no_dispatcher_sends_nothing() -> None:
    task_events = TaskEvents(None)
    task_events.received(_job(1))
    task_events.flush(force=True)
    task_events.close()
