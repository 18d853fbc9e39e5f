"""The handles every editq process holds: one Redis client, its scripts, one S3 client."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from editq.clock import Clock
from editq.settings import Settings
from editq.storage.keys import Keys
from editq.storage.redis import FAIL_FAST_RETRIES, PATIENT_RETRIES, Scripts, connect
from editq.storage.s3 import ObjectStore


@dataclass
class Backend:
    """Built once per process (API startup, worker process init) and shared by its threads."""

    settings: Settings
    redis: redis.Redis
    scripts: Scripts
    keys: Keys
    objects: ObjectStore

    @classmethod
    def connect(cls, settings: Settings, *, request_path: bool = False) -> Backend:
        """`request_path` (the API): short timeouts and no retry loops, so a stalled Redis or S3
        gives a 503 within seconds; workers keep the patient defaults."""
        retries = FAIL_FAST_RETRIES if request_path else PATIENT_RETRIES
        if request_path:
            timeout = settings.api_redis_timeout_seconds
            client = connect(settings.redis_url, timeout=timeout, fail_fast=True)
            objects = ObjectStore(
                settings, timeout=settings.api_s3_timeout_seconds, attempts=1, server_retries=2
            )
        else:
            timeout = 5.0
            client, objects = connect(settings.redis_url, timeout=timeout), ObjectStore(settings)
        # scripts on a client of their own that never re-sends one (Scripts decides when it may)
        script_client = connect(settings.redis_url, timeout=timeout, retries=False)
        return cls(
            settings=settings,
            redis=client,
            scripts=Scripts(script_client, settings.redis_prefix, settings.clock.offset_ms, retries),
            keys=Keys(settings.redis_prefix),
            objects=objects,
        )

    @property
    def clock(self) -> Clock:
        return self.settings.clock

    def close(self) -> None:
        self.redis.close()
        self.scripts.client.close()
        self.objects.client.close()


__all__ = ["Backend"]
