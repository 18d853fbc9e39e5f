"""The Celery app, configured for long paid calls on a Redis broker.

Early acks and prefetch 1, and no ack emulation on the broker: Celery never redelivers (editq's
leases bring lost work back), so no live work goes to a second worker; no result backend (job
state lives in editq's own records); task events on for Flower (edits, which do not cross the
broker, send theirs from `worker/runner.py`). Queues: `editq.webhooks`, `editq.ops`
(housekeeping, and the economy lane's batches) and `editq.edits`, which only an earlier
version published to.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from editq import redis_target
from editq.logs import configure
from editq.settings import Settings, get_settings
from editq.worker import broker
from editq.worker.probes import LoopProbe

EDITS, WEBHOOKS, OPS = "editq.edits", "editq.webhooks", "editq.ops"
#: The app setting that carries the number of edit threads from `editq worker` to the worker.
EDIT_SLOTS = "editq_edit_slots"
TASK_ROUTES = {
    "editq.edit": {"queue": EDITS},
    "editq.deliver": {"queue": WEBHOOKS},
    "editq.housekeeping": {"queue": OPS},
    "editq.economy": {"queue": OPS},
}


def edit_slots(concurrency: int) -> int:
    """Of a worker's `concurrency` threads, those that run edits; the rest (two, or one for a
    worker of fewer than four) are Celery's pool, for webhooks, housekeeping and economy work."""
    return concurrency - 2 if concurrency >= 4 else max(1, concurrency - 1)


def make_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    # sentinel://: kombu's Sentinel transport, one URL per Sentinel and the service as
    # `master_name`; kombu 5.7 with redis-py 8 reconnects to the promoted master (older pairs
    # did not: celery/celery#6348), which tests/stack/test_sentinel.py checks with a SIGKILL.
    target = redis_target.parse(settings.redis_url)
    app = Celery("editq", broker=target.broker_url(), include=["editq.worker.tasks"])
    app.conf.update(
        # one Redis client per channel instead of one per published message (worker/broker.py)
        broker_transport=broker.transport_for(settings.redis_url),
        broker_transport_options={**_broker_transport(settings), **target.broker_transport_options()},
        visibility_timeout=settings.visibility_timeout,
        broker_connection_retry_on_startup=True,
        # keep reconnecting for as long as Redis is away (the default gives up after 100 tries)
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        broker_pool_limit=max(16, settings.worker_concurrency + 4),
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        # Early acks: a message is acked as the pool takes it. editq never relies on Celery to
        # redeliver: an admitted job's slot lease (EDITQ_ADMIT_GRACE_SECONDS) and a running
        # job's lease bring it back if its worker dies, and a delivery's claim lapses. With late
        # acks every running task is an unacked message, and when Redis restarts kombu's channel
        # close tries to restore them after it has dropped its connection pool: AttributeError
        # "'NoneType' object has no attribute 'hostname'" in Channel._connparams, which Celery
        # logs as "Unrecoverable error" and the worker exits (celery/kombu#970 and #582: the
        # restore_unacked / conn_or_acquire path on a closed channel; still in kombu 5.7.0).
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        task_reject_on_worker_lost=False,
        task_acks_on_failure=True,
        task_acks_on_timeout=True,
        worker_send_task_events=settings.task_events,
        # Jobs reach Celery only when they can run at once, so there is no wait for a task-sent
        # event to show; the worker's own events (received, succeeded; edits send no started
        # event: worker/broker.py) feed Flower.
        task_send_sent_event=False,
        task_track_started=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # editq throttles with its own shared limiter; Celery's per-worker rate limits are unused.
        worker_disable_rate_limits=True,
        worker_soft_shutdown_timeout=0.0,
        worker_hijack_root_logger=False,
        task_default_queue=OPS,
        task_routes=TASK_ROUTES,
        beat_schedule=_beat_schedule(settings),
        beat_scheduler="editq.worker.probes:ProbedScheduler",
        timezone="UTC",
    )
    app.steps["worker"].add(LoopProbe)
    return app


def _broker_transport(settings: Settings) -> dict[str, Any]:
    return {
        # No unacked hash: with early acks kombu would still write each delivered message to it
        # and delete it again at the ack (two round trips per message), only to restore
        # messages editq never waits for (its leases bring lost work back).
        "ack_emulation": False,
        "visibility_timeout": settings.visibility_timeout,
        "global_keyprefix": f"{settings.redis_prefix}:celery:",
        "unacked_restore_throttle": 3,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 25,
    }


def _beat_schedule(settings: Settings) -> dict[str, Any]:
    return {
        "housekeeping": {
            "task": "editq.housekeeping",
            "schedule": settings.housekeeping_seconds,
            "options": {"expires": settings.housekeeping_seconds},
        },
    }


@signals.setup_logging.connect
def _logging(**_: Any) -> None:
    """Celery leaves logging to editq: every record goes through editq's one handler."""
    configure(get_settings())


app = make_app()
