"""The handles every editq process holds: one Redis client, its scripts, one S3 client."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from editq.clock import Clock
from editq.settings import Settings
from editq.storage.keys import Keys
from editq.storage.redis import REDIS_ERRORS, Scripts, connect
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
    def connect(cls, settings: Settings) -> Backend:
        client = connect(settings.redis_url)
        return cls(
            settings=settings,
            redis=client,
            scripts=Scripts(client, settings.redis_prefix, settings.clock.offset_ms),
            keys=Keys(settings.redis_prefix),
            objects=ObjectStore(settings),
        )

    @property
    def clock(self) -> Clock:
        return self.settings.clock

    def close(self) -> None:
        self.redis.close()
        self.objects.client.close()


__all__ = ["REDIS_ERRORS", "Backend"]
