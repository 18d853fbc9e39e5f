"""Flower as editq runs it (`editq flower`): its records through editq's log handler, and its
`/metrics` behind `EDITQ_METRICS_TOKEN` like the API's."""

from __future__ import annotations

import json
import sys

import flower.urls
from celery.bin.celery import main as celery_main
from flower.views.monitor import Metrics

from editq.logs import configure
from editq.settings import get_settings
from editq.telemetry import metrics_refusal


class GuardedMetrics(Metrics):  # type: ignore[misc]  # flower is untyped
    """Flower's `/metrics`, answering 401 without the metrics token when one is set."""

    def prepare(self) -> None:
        token = get_settings().metrics_token
        refusal = metrics_refusal(
            self.request.headers.get("Authorization"), token.get_secret_value() if token else None
        )
        if refusal is None:
            return
        code, message = refusal
        self.set_status(401)
        self.set_header("WWW-Authenticate", 'Bearer realm="editq"')
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"code": code, "message": message, "param": None}}))


def guard_metrics() -> None:
    """Point Flower's `/metrics` route at `GuardedMetrics`. Flower builds its application from
    the `flower.urls.handlers` list and has no other hook for a handler of one's own."""
    for index, handler in enumerate(flower.urls.handlers):
        if isinstance(handler, tuple) and handler[0] == r"/metrics":
            flower.urls.handlers[index] = (r"/metrics", GuardedMetrics)


def run(port: int | None, address: str) -> int:
    settings = get_settings()
    configure(settings)
    guard_metrics()
    sys.argv = [
        "celery",
        "-A",
        "editq.worker.app",
        "flower",
        f"--port={port or settings.flower_port}",
        f"--address={address}",
        "--logging=none",  # tornado adds no handler of its own: editq's formats every record
    ]
    celery_main()
    return 0
