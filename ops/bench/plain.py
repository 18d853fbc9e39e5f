"""The baseline: the same edits as plain Celery tasks, throttled the way Celery offers, with a
per-worker `rate_limit` (limit / workers) and a retry countdown on 429. No admission control."""

from __future__ import annotations

import base64
import os
import threading
import time
from typing import Any

import boto3
import httpx
import redis
from botocore.config import Config
from celery import Celery

BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0")
RATE = os.environ.get("BENCH_RATE_LIMIT") or None
PREFIX = os.environ.get("BENCH_PREFIX", "plain")

app = Celery("plain", broker=BROKER)
app.conf.update(
    broker_transport_options={"global_keyprefix": f"{PREFIX}:celery:", "visibility_timeout": 3600},
    task_acks_late=True,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def _s3() -> Any:
    with _lock:
        if "s3" in _clients:
            return _clients["s3"]
        s3 = boto3.client(
            "s3",
            endpoint_url=os.environ["EDITQ_S3_ENDPOINT_URL"],
            aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
            config=Config(connect_timeout=10, read_timeout=30, max_pool_connections=64),
        )
        _clients["http"] = httpx.Client(
            timeout=httpx.Timeout(120, connect=10), limits=httpx.Limits(max_connections=64)
        )
        _clients["redis"] = redis.Redis.from_url(BROKER, decode_responses=True)
        _clients["s3"] = s3
        return s3


@app.task(name="plain.edit", bind=True, rate_limit=RATE, max_retries=50, acks_late=True)
def plain_edit(self: Any, job: str, bucket: str, source: str, prompt: str) -> None:
    s3 = _s3()
    http, store = _clients["http"], _clients["redis"]
    store.hsetnx(f"{PREFIX}:start", job, int(time.time() * 1000))
    data = s3.get_object(Bucket=bucket, Key=source)["Body"].read()
    response = http.post(
        os.environ["OPENAI_BASE_URL"] + "/images/edits",
        headers={"Authorization": "Bearer sk-bench"},
        data={
            "model": "gpt-image-1-mini",
            "prompt": prompt,
            "size": "1024x1024",
            "quality": "low",
            "output_format": "jpeg",
        },
        files={"image": ("a.png", data, "image/png")},
    )
    if response.status_code == 429:
        store.hincrby(f"{PREFIX}:stats", "429", 1)
        raise self.retry(countdown=float(response.headers.get("retry-after", "1")))
    response.raise_for_status()
    out = base64.b64decode(response.json()["data"][0]["b64_json"])
    s3.put_object(Bucket=bucket, Key=f"plain/{job}.jpg", Body=out, ContentType="image/jpeg")
    store.hset(f"{PREFIX}:done", job, int(time.time() * 1000))
