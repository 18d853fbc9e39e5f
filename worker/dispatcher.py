"""The dispatcher: admits jobs for its own process's edit threads and drains the Redis schedule.

Every worker process runs one, in a thread. Admission is one Lua script, so any number of
dispatchers can run at once; each admits only while its process has a free edit slot and hands
the job straight to that slot (`worker.runner`). With a slot free it sleeps on the Redis wake
list (pushed by submissions and by finished jobs) for no longer than the limiter or the schedule
asks; with every slot taken it waits for one of its own jobs to end instead, leaving wake-ups to
dispatchers that have room. Dispatchers also run the housekeeping sweep (lapsed leases,
deadlines, dead holds, retention) when it is due, so jobs are recovered even while beat is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from editq import logs
from editq.errors import EditqError
from editq.job import Status
from editq.storage import jobs, limiter, schedule
from editq.storage.backend import Backend
from editq.storage.economy import CLAIM_MS
from editq.storage.errors import StorageError
from editq.storage.limiter import Outcome
from editq.storage.records import Entry, Kind
from editq.worker import housekeeping
from editq.worker.runner import Admitted, EditRunner

log = logging.getLogger("editq.dispatcher")

#: Longest sleep between rounds when nothing asks for a wake-up sooner.
IDLE_SECONDS = 1.0
#: Most jobs admitted in one round before the schedule gets a turn.
ROUND = 200
#: Longest a new schedule entry (a job's webhook event, a retry due at once) waits for a
#: dispatcher to look; busy dispatchers, woken by every finished job, look no more often.
SCHEDULE_POLL_SECONDS = 0.05

Publish = Callable[[str, list[str], str], None]


class Slots(Protocol):
    """Where admitted jobs run: this process's edit threads."""

    def room(self) -> int: ...

    def hand(self, job: Admitted) -> None: ...


#: Turns a due job event into a webhook delivery.
Materialize = Callable[[Entry], object]


def take(db: Backend, step: limiter.Admission) -> Admitted | None:
    """The job an admission step admitted, to run here; a job whose deadline passed is expired
    (admission took it off its queue). None when the step admitted nothing."""
    if step.outcome is Outcome.ADMITTED:
        logs.event(log, "job.admitted", job_id=step.job_id, tenant=step.tenant, account=step.account)
        return Admitted(step.tenant, step.job_id, step.token, step.model, step.sources, step.mask)
    if step.outcome is Outcome.EXPIRED and isinstance(
        jobs.cancel(db, step.tenant, step.job_id, mode=Status.EXPIRED), Status
    ):
        logs.event(log, "job.expired", job_id=step.job_id, tenant=step.tenant, reason="deadline")
    return None


def admit_round(db: Backend, slots: Slots) -> tuple[int, float]:
    """Admit what the limiter allows and this process has slots for, handing each job to a slot.
    Returns (jobs admitted, seconds until worth trying again)."""
    admitted = 0
    while admitted < ROUND:
        if slots.room() <= 0:
            return admitted, IDLE_SECONDS
        step = limiter.admit(db)
        job = take(db, step)
        if job is not None:
            slots.hand(job)
            admitted += 1
            if not step.more:
                return admitted, IDLE_SECONDS
            if slots.room() <= 0:
                # Capacity is left elsewhere: pass the wake-up on to a dispatcher with room.
                limiter.wake(db)
                return admitted, IDLE_SECONDS
        elif step.outcome is Outcome.EXPIRED:
            continue
        elif step.outcome is Outcome.WAIT:
            return admitted, step.wait_ms / 1000
        else:  # full, empty, paused: a wake-up (new job, freed slot, resume) says when
            return admitted, IDLE_SECONDS
    return admitted, 0.0


def drain_schedule(db: Backend, publish: Publish, materialize: Materialize, lease_ms: int) -> float | None:
    """Due retries back into their queues; events into deliveries; deliveries, economy
    collections and economy batch polls to the workers (each claimed for a while, so one
    worker has it). Returns seconds until the next entry is due (None: the schedule is empty)."""
    next_due = schedule.next_due_ms(db)
    if next_due is None or next_due > 0:
        return None if next_due is None else next_due / 1000
    for entry in schedule.due(db):
        if entry.kind is Kind.RETRY:
            schedule.release_retry(db, entry)
        elif entry.kind is Kind.EVENT:
            if schedule.claim(db, entry, 30_000):
                materialize(entry)
        elif entry.kind is Kind.DELIVERY and schedule.claim(db, entry, lease_ms):
            delivery = entry.delivery_id
            publish("editq.deliver", [delivery], f"{delivery}.{schedule.now_ms(db)}")
        elif entry.kind in (Kind.BATCH, Kind.COLLECT) and schedule.claim(db, entry, CLAIM_MS):
            action = "advance" if entry.kind is Kind.BATCH else "collect"
            publish("editq.economy", [action, entry.batch_id], f"{entry.format()}.{schedule.now_ms(db)}")
    next_due = schedule.next_due_ms(db)
    return None if next_due is None else next_due / 1000


class Dispatcher(threading.Thread):
    """One admission loop per worker process."""

    def __init__(
        self,
        db: Backend,
        runner: EditRunner,
        publish: Publish,
        materialize: Materialize,
        periodic: Callable[[bool], object] | None = None,
    ) -> None:
        super().__init__(name="editq-dispatcher", daemon=True)
        self.db = db
        self.runner = runner
        #: Called on each housekeeping tick (True on the first): the provider's model listing.
        self.periodic = periodic
        self.publish = publish
        self.materialize = materialize
        self.stopped = threading.Event()
        self.lease_ms = int((db.settings.webhook_timeout_seconds + 60) * 1000)
        self.next_sweep = 0.0
        #: When the schedule was last looked at (monotonic) and when its next entry falls due.
        self.schedule_checked = -SCHEDULE_POLL_SECONDS
        self.schedule_due: float | None = None

    def step(self) -> float:
        """One round; returns how long to sleep."""
        now = time.monotonic()
        if now >= self.next_sweep:
            first = self.next_sweep == 0.0
            self.next_sweep = now + self.db.settings.housekeeping_seconds
            housekeeping.sweep_if_due(self.db)
            if self.periodic is not None:
                self.periodic(first)
        _, wait = admit_round(self.db, self.runner)
        self.runner.events.flush()
        if now >= self.schedule_checked + SCHEDULE_POLL_SECONDS:
            self.schedule_checked = now
            next_due = drain_schedule(self.db, self.publish, self.materialize, self.lease_ms)
            self.schedule_due = None if next_due is None else now + next_due
        if self.schedule_due is not None:
            wait = min(wait, max(self.schedule_due, self.schedule_checked + SCHEDULE_POLL_SECONDS) - now)
        return max(0.0, min(wait, IDLE_SECONDS))

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                wait = self.step()
                if wait <= 0:
                    continue
                if self.runner.room() > 0:
                    limiter.sleep_until_woken(self.db, wait)
                else:
                    self.runner.wait_for_room(wait)
            except (StorageError, EditqError) as exc:
                log.warning("dispatcher: %s", exc)
                self.stopped.wait(1.0)
            except Exception:
                log.exception("dispatcher round failed")
                self.stopped.wait(1.0)

    def stop(self) -> None:
        self.stopped.set()
