"""Celery tasks and the worker's lifecycle hooks. Tasks are thin: the logic is in plain
functions (`worker.edit`, `worker.webhooks`, `worker.housekeeping`) that tests call directly."""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from editq.settings import get_settings
from editq.storage import limiter
from editq.worker import context, dispatcher, economy, edit, housekeeping, models, probes, webhooks
from editq.worker.app import app

log = logging.getLogger("editq.worker")

_dispatcher: dispatcher.Dispatcher | None = None


def publish(name: str, args: list[str], task_id: str) -> None:
    app.send_task(name, args=args, task_id=task_id)


@app.task(name="editq.edit", bind=True, ignore_result=True, Request="editq.worker.broker:EditRequest")
def edit_task(self: Any, tenant: str, job_id: str, token: str) -> str:
    return edit.run(context.current(), tenant, job_id, token).value


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
    dispatcher.admit_round(ctx.db, publish)
    dispatcher.drain_schedule(
        ctx.db,
        publish,
        lambda member: webhooks.materialize(ctx, member),
        int((ctx.settings.webhook_timeout_seconds + 60) * 1000),
    )
    return result


def _edit_slots(concurrency: int) -> int:
    """Threads kept for edits; two stay free for webhooks and housekeeping."""
    return concurrency - 2 if concurrency >= 4 else max(1, concurrency - 1)


@signals.worker_ready.connect
def _start(sender: Any = None, **_: Any) -> None:
    global _dispatcher
    settings = get_settings()
    concurrency = (
        int(getattr(sender.controller, "concurrency", None) or settings.worker_concurrency)
        if sender
        else settings.worker_concurrency
    )
    ctx = context.build(settings, _edit_slots(concurrency))
    context.install(ctx)
    ctx.db.objects.ensure_bucket()
    ctx.leases.beat()
    probes.redis_reached(True)
    ctx.leases.start()
    _dispatcher = dispatcher.Dispatcher(
        ctx.db,
        publish,
        lambda member: webhooks.materialize(ctx, member),
        lambda first: models.refresh_in_background(ctx, force=first),
    )
    _dispatcher.start()
    limiter.wake(ctx.db)
    probes.phase("ready")
    log.info("editq worker %s ready with %d edit slots", ctx.worker_id, ctx.slots)


@signals.worker_shutting_down.connect
def _stop(**_: Any) -> None:
    """SIGTERM (warm shutdown): admit nothing more, keep the running jobs' leases alive while
    Celery lets them finish (it waits for the pool's threads), and stop offering slots."""
    probes.phase("stopping")
    if _dispatcher is not None:
        _dispatcher.stop()
    ctx = context.current()
    ctx.leases.drain()
    limiter.unregister(ctx.db, ctx.worker_id)
    log.info("editq worker %s stopping: finishing the jobs it runs", ctx.worker_id)


@signals.worker_shutdown.connect
def _closed(**_: Any) -> None:
    context.shutdown()
    probes.finish()
