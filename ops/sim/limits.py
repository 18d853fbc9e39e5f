"""The simulator's own rate limits: token buckets for requests and images per minute that
start full and refill continuously (OpenAI's reset headers describe the same shape)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass
class Bucket:
    per_minute: float
    tokens: float = -1.0
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.per_minute

    def refill(self, now: float) -> None:
        self.tokens = min(self.per_minute, self.tokens + (now - self.at) * self.per_minute / 60)
        self.at = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` tokens are there (0 if they are)."""
        missing = amount - self.tokens
        return 0.0 if missing <= 0 else missing * 60 / self.per_minute

    def reset_seconds(self) -> float:
        """Seconds until the bucket is full again."""
        return (self.per_minute - self.tokens) * 60 / self.per_minute


def duration(seconds: float) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `120ms`."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


class Limits:
    """Requests and images per minute; None means unlimited."""

    def __init__(self, rpm: float | None, ipm: float | None, *, start_full: bool = True) -> None:
        self.requests = Bucket(rpm, tokens=-1 if start_full else 0) if rpm else None
        self.images = Bucket(ipm, tokens=-1 if start_full else 0) if ipm else None

    def take(self, images: int) -> float:
        """Take one request and `images` images, or return the seconds to wait (nothing taken)."""
        now = time.monotonic()
        wait = 0.0
        for bucket, amount in ((self.requests, 1), (self.images, images)):
            if bucket is not None:
                bucket.refill(now)
                wait = max(wait, bucket.wait_for(min(amount, bucket.per_minute)))
        if wait > 0:
            return wait
        if self.requests is not None:
            self.requests.tokens -= 1
        if self.images is not None:
            self.images.tokens -= images
        return 0.0

    def headers(self, include_images: bool) -> dict[str, str]:
        now = time.monotonic()
        headers: dict[str, str] = {}
        if self.requests is not None:
            self.requests.refill(now)
            headers.update(
                {
                    "x-ratelimit-limit-requests": str(int(self.requests.per_minute)),
                    "x-ratelimit-remaining-requests": str(max(0, int(self.requests.tokens))),
                    "x-ratelimit-reset-requests": duration(self.requests.reset_seconds()),
                }
            )
        if self.images is not None and include_images:
            self.images.refill(now)
            headers.update(
                {
                    "x-ratelimit-limit-images": str(int(self.images.per_minute)),
                    "x-ratelimit-remaining-images": str(max(0, int(self.images.tokens))),
                    "x-ratelimit-reset-images": duration(self.images.reset_seconds()),
                }
            )
        headers.update(
            {
                "x-ratelimit-limit-tokens": "8000000",
                "x-ratelimit-remaining-tokens": "8000000",
                "x-ratelimit-reset-tokens": "0s",
            }
        )
        return headers
