"""Admitted edits run in the worker process that admitted them, on threads of its own.

The dispatcher admits a job only while this process has a free edit slot and hands it straight
to one of these threads: no broker message in and out per job, and no wait for another worker
to pick it up. Nothing is lost by skipping the broker: an admitted job holds a slot lease
(`EDITQ_ADMIT_GRACE_SECONDS`) and a running one a job lease, and a dead worker's jobs come back
when those lapse, exactly as they did for a Celery message acked early.

Flower still sees every edit: `TaskEvents` sends the `task-received` and `task-succeeded` (or
`task-failed`) events Celery's own request would, buffered and published as one message per
flush, the way Celery's event loop batches its own task events.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("editq.worker")

#: The task name Flower shows for an edit (the Celery task of the same name runs messages a
#: worker of an earlier version left in the `editq.edits` queue).
EDIT_TASK = "editq.edit"
#: Longest a buffered task event waits before it is published.
EVENT_FLUSH_SECONDS = 0.5
#: Most task events published in one message.
EVENT_BUFFER = 64


@dataclass(frozen=True)
class Admitted:
    """One admitted job, handed from the dispatcher to an edit thread."""

    tenant: str
    job_id: str
    token: str
    #: The job's model, sources and mask (JSON) as admission read them ("": unknown).
    model: str = ""
    sources: str = ""
    mask: str = ""

    @property
    def task_id(self) -> str:
        return f"{self.job_id}.{self.token}"


class TaskEvents:
    """Celery task events for the edits this process runs, so Flower lists them with their
    arguments, times and outcome. Publishing never holds up or fails a job: when the broker
    refuses a publish, the events buffered so far are dropped with their dispatcher, and the
    next event makes a new one (no backlog grows while Redis is away)."""

    def __init__(
        self,
        make: Callable[[], Any] | None,
        wanted: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        #: Makes a celery `EventDispatcher` with the `task` group buffered (None: never send).
        self.make = make
        self.dispatcher: Any = None
        #: Whether events are wanted now (Flower switches them on and off while it watches).
        self.wanted = wanted
        self.clock = clock
        self.flushed = clock()
        self._lock = threading.Lock()

    @classmethod
    def for_app(cls, app: Any, hostname: str, wanted: Callable[[], bool]) -> TaskEvents:
        def make() -> Any:
            return app.events.Dispatcher(
                app.connection_for_write(),
                hostname=hostname,
                enabled=True,
                buffer_group=["task"],
                buffer_limit=EVENT_BUFFER,
                buffer_while_offline=False,  # a failed publish raises: `_drop` forgets the batch
            )

        return cls(make, wanted)

    def _send(self, type_: str, **fields: Any) -> None:
        if self.make is None or not self.wanted():
            return
        try:
            with self._lock:
                if self.dispatcher is None:
                    self.dispatcher = self.make()
                dispatcher = self.dispatcher
            dispatcher.send(type_, **fields)
        except Exception as exc:  # a broker hiccup costs Flower events, never a job
            log.debug("task event %s not sent: %s", type_, exc)
            self._drop(dispatcher=None)

    def received(self, job: Admitted) -> None:
        self._send(
            "task-received",
            uuid=job.task_id,
            name=EDIT_TASK,
            args=repr([job.tenant, job.job_id, job.token]),
            kwargs="{}",
            root_id=job.task_id,
            parent_id=None,
            retries=0,
            eta=None,
            expires=None,
        )

    def succeeded(self, job: Admitted, result: str, runtime: float) -> None:
        self._send("task-succeeded", uuid=job.task_id, result=repr(result), runtime=runtime)

    def failed(self, job: Admitted, exc: BaseException) -> None:
        self._send(
            "task-failed",
            uuid=job.task_id,
            exception=repr(exc),
            traceback="".join(traceback.format_exception(exc)),
        )

    def flush(self, force: bool = False) -> None:
        """Publish what is buffered, when it has waited long enough (or `force`)."""
        dispatcher = self.dispatcher
        if dispatcher is None:
            return
        now = self.clock()
        if not force and now - self.flushed < EVENT_FLUSH_SECONDS:
            return
        self.flushed = now
        try:
            dispatcher.flush()
        except Exception as exc:
            log.debug("task events not flushed: %s", exc)
            self._drop(dispatcher)

    def _drop(self, dispatcher: Any) -> None:
        """Forget the dispatcher (`dispatcher`, or whichever is current) and what it buffered."""
        with self._lock:
            if dispatcher is not None and dispatcher is not self.dispatcher:
                return
            dropped, self.dispatcher = self.dispatcher, None
        if dropped is not None:
            self._close(dropped)

    def close(self) -> None:
        self.flush(force=True)
        with self._lock:
            dispatcher, self.dispatcher = self.dispatcher, None
        if dispatcher is not None:
            self._close(dispatcher)

    @staticmethod
    def _close(dispatcher: Any) -> None:
        connection = dispatcher.connection
        try:
            dispatcher.close()
            connection.release()
        except Exception as exc:
            log.debug("event connection not released: %s", exc)


#: What an edit thread runs: an admitted job, and whether it may admit its next job itself (asked
#: when it settles; not once the worker stops). Returns the run's result and the next job it
#: admitted, if any (which the thread runs even if the worker began to stop meanwhile).
RunJob = Callable[[Admitted, Callable[[], bool]], tuple[str, Admitted | None]]


class EditRunner:
    """`slots` threads that run the edits the dispatcher hands over, one each at a time. A
    thread whose job succeeded admits its own next job in the round trip that settles the last
    (`edit.Then`), so a busy worker's dispatcher only fills threads that fall idle."""

    def __init__(
        self,
        slots: int,
        run: RunJob,
        events: TaskEvents | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.slots = slots
        self.run_job = run
        self.events = events or TaskEvents(None)
        self.clock = clock
        self._lock = threading.Lock()
        #: Signalled when a job is handed over (edit threads wait on it).
        self._work = threading.Condition(self._lock)
        #: Signalled when a slot frees (the dispatcher waits on it while all are taken).
        self._room = threading.Condition(self._lock)
        self._pending: deque[Admitted] = deque()
        self._free = slots
        self._closing = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"editq-edit-{i}", daemon=True) for i in range(slots)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def room(self) -> int:
        """Free slots: jobs the dispatcher may still admit for this process."""
        with self._lock:
            return 0 if self._closing else self._free

    def wait_for_room(self, timeout: float) -> bool:
        """Block until a slot frees or `timeout` passes; whether one is free."""
        with self._room:
            if self._free == 0 and not self._closing:
                self._room.wait(timeout)
            return self._free > 0 and not self._closing

    def hand(self, job: Admitted) -> None:
        """Run `job` on the next free thread. The caller checked `room()` (one dispatcher per
        process hands jobs over); handing over more than there are slots only queues them."""
        with self._lock:
            self._free -= 1
            self._pending.append(job)
            self._work.notify()
        self.events.received(job)

    def _accepting(self) -> bool:
        return not self._closing

    def _take(self) -> Admitted | None:
        with self._lock:
            while not self._pending:
                if self._closing:
                    return None
                self._work.wait()
            return self._pending.popleft()

    def _run(self, job: Admitted) -> Admitted | None:
        """One job on this thread; the next job it admitted for the same thread, if any."""
        began = self.clock()
        try:
            result, following = self.run_job(job, self._accepting)
        except Exception as exc:
            # The job's lease brings it back (housekeeping); this run is over.
            log.exception("edit %s raised; its lease will bring it back", job.task_id)
            self.events.failed(job, exc)
            return None
        self.events.succeeded(job, result, self.clock() - began)
        if following is not None:
            self.events.received(following)
        return following

    def _loop(self) -> None:
        while (job := self._take()) is not None:
            following: Admitted | None = job
            while following is not None:
                following = self._run(following)
            with self._lock:
                self._free += 1
                self._room.notify()

    def stop_taking(self) -> None:
        """Take nothing more: no room for the dispatcher, no next job admitted by a thread;
        the running and handed-over jobs still finish (a warm shutdown's first step)."""
        with self._lock:
            self._closing = True
            self._work.notify_all()
            self._room.notify_all()

    def close(self, timeout: float | None = None) -> bool:
        """Take nothing more, let the running and handed-over jobs finish (for at most
        `timeout` seconds), publish the last events. Whether every thread finished."""
        self.stop_taking()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self.events.close()
        return not any(thread.is_alive() for thread in self._threads)
