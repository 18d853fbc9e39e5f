"""Celery tasks and the worker's lifecycle hooks. Tasks are thin: the logic is in plain
functions (`worker.edit`, `worker.webhooks`, `worker.housekeeping`) that tests call directly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import signals

from editq.settings import get_settings
from editq.storage import limiter
from editq.worker import context, dispatcher, economy, edit, housekeeping, models, probes, webhooks
from editq.worker.app import EDIT_SLOTS, app, edit_slots
from editq.worker.runner import Admitted, EditRunner, TaskEvents

log = logging.getLogger("editq.worker")

#: Longest a starting worker waits for the provider's model listing before it admits jobs.
FIRST_LISTING_WAIT_SECONDS = 5.0

_dispatcher: dispatcher.Dispatcher | None = None
_runner: EditRunner | None = None
#: How the worker is stopping: "Warm" lets running edits finish, "Cold" does not wait.
_stopping = "Warm"


def publish(name: str, args: list[str], task_id: str) -> None:
    app.send_task(name, args=args, task_id=task_id)


@app.task(name="editq.edit", ignore_result=True)
def edit_task(tenant: str, job_id: str, token: str) -> str:
    """Edits run on the dispatcher's own threads (`worker.runner`); this task only runs a message
    a worker of an earlier version left in the `editq.edits` queue (the token check makes a
    stale one a no-op)."""
    return edit.run(context.current(), tenant, job_id, token).value


def _run_edit(job: Admitted, may_admit: Callable[[], bool]) -> tuple[str, Admitted | None]:
    ctx = context.current()
    ahead = edit.Ahead.parse(job.model, job.sources, job.mask)
    then = edit.Then(may_admit)
    outcome = edit.run(ctx, job.tenant, job.job_id, job.token, ahead, then)
    following = dispatcher.take(ctx.db, then.admission) if then.admission else None
    return outcome.value, following


@app.task(name="editq.deliver", ignore_result=True)
def deliver_task(delivery_id: str) -> str:
    return webhooks.deliver(context.current(), delivery_id)


@app.task(name="editq.economy", ignore_result=True)
def economy_task(action: str, batch_id: str) -> str:
    """`collect`: open and send the next economy batch; `advance`: move batch `batch_id` on."""
    ctx = context.current()
    if action == "collect":
        return economy.collect(ctx) or ""
    economy.advance(ctx, batch_id)
    return batch_id


@app.task(name="editq.housekeeping", ignore_result=True)
def housekeeping_task() -> dict[str, Any]:
    ctx = context.current()
    result = housekeeping.sweep_if_due(ctx.db) or {}
    limiter.wake(ctx.db)  # the dispatchers admit: each for its own edit threads
    dispatcher.drain_schedule(
        ctx.db,
        publish,
        lambda member: webhooks.materialize(ctx, member),
        int((ctx.settings.webhook_timeout_seconds + 60) * 1000),
    )
    return result


def _events_wanted(consumer: Any) -> Callable[[], bool]:
    """Whether task events are wanted now: as Celery's own dispatcher says, which `-E` and
    Flower's `enable_events`/`disable_events` switch."""

    def wanted() -> bool:
        # read each time: the consumer makes a new dispatcher when it reconnects
        own = getattr(consumer, "event_dispatcher", None)
        return own is not None and bool(own.enabled) and (not own.groups or "task" in own.groups)

    return wanted


@signals.worker_ready.connect
def _start(sender: Any = None, **_: Any) -> None:
    global _dispatcher, _runner
    settings = get_settings()
    slots = int(app.conf.get(EDIT_SLOTS) or edit_slots(settings.worker_concurrency))
    ctx = context.build(settings, slots)
    context.install(ctx)
    ctx.db.objects.ensure_bucket()
    ctx.leases.beat()
    probes.redis_reached(True)
    ctx.leases.start()
    hostname = str(getattr(sender, "hostname", "") or ctx.worker_id)
    _runner = EditRunner(slots, _run_edit, TaskEvents.for_app(app, hostname, _events_wanted(sender)))
    _runner.start()
    # What the provider serves, before the first admission (bounded: a slow provider only
    # delays the listing, not the worker).
    models.refresh_in_background(ctx, force=True)
    models.wait_for_listing(FIRST_LISTING_WAIT_SECONDS)
    _dispatcher = dispatcher.Dispatcher(
        ctx.db,
        _runner,
        publish,
        lambda member: webhooks.materialize(ctx, member),
        lambda _first: models.refresh_in_background(ctx),
    )
    _dispatcher.start()
    limiter.wake(ctx.db)
    probes.phase("ready")
    log.info("editq worker %s ready with %d edit slots", ctx.worker_id, ctx.slots)


@signals.worker_shutting_down.connect
def _stop(how: str = "Warm", **_: Any) -> None:
    """SIGTERM (warm shutdown): admit nothing more, keep the running jobs' leases alive while
    they finish (Celery waits for its pool's threads, `_closed` for the edit threads), and stop
    offering slots. A cold shutdown waits for nothing: the leases bring the jobs back."""
    global _stopping
    _stopping = how
    probes.phase("stopping")
    if _dispatcher is not None:
        _dispatcher.stop()
    if _runner is not None:
        _runner.stop_taking()  # nor do the edit threads admit their next jobs
    ctx = context.current()
    ctx.leases.drain()
    limiter.unregister(ctx.db, ctx.worker_id)
    log.info("editq worker %s stopping: finishing the jobs it runs", ctx.worker_id)


@signals.worker_shutdown.connect
def _closed(**_: Any) -> None:
    if _runner is not None:
        settings = get_settings()
        # A warm stop waits as long as a provider call may take, and the settling after it.
        grace = settings.provider_connect_timeout + settings.provider_read_timeout + 30
        if not _runner.close(grace if _stopping == "Warm" else 0.0):
            log.warning("edits still running at exit; their leases will bring them back")
    context.shutdown()
    probes.finish()
