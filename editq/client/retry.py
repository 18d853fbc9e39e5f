"""When the client sends a request again: after a connection failure, 429, 502, 503 or 504, a
bounded number of times, never sooner than `Retry-After`, with jittered exponential backoff
otherwise. Every request the client makes is safe to send twice: reads, submits and batches
carry an `Idempotency-Key` (one per call, the same on every attempt), uploads are stored by
their content, an estimate stores nothing, a second cancel finds the job canceled."""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Statuses worth another attempt: too many requests, and the API (or a proxy before it) unable
#: to answer now.
RETRIED = frozenset({429, 502, 503, 504})

_jitter = random.SystemRandom()


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` in all (1: never retry); backoff `base` doubling to `cap` seconds, each delay
    drawn between half and all of it; a `Retry-After` above `longest_wait` is not waited for."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    longest_wait: float = 120.0

    def delay(self, attempt: int, status: int | None, retry_after: float | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up. `status` is None
        for a connection failure."""
        if attempt >= self.attempts or (status is not None and status not in RETRIED):
            return None
        backoff = min(self.cap, self.base * 2 ** (attempt - 1))
        wait = _jitter.uniform(backoff / 2, backoff)
        if retry_after is not None:
            if retry_after > self.longest_wait:
                return None
            wait = retry_after + _jitter.uniform(0, min(1.0, retry_after * 0.1 + 0.1))
        return wait


#: Never send a request twice.
NO_RETRIES = RetryPolicy(attempts=1)
