"""What a provider's answer says about its rate limits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RateHeaders:
    """The provider's x-ratelimit-* figures editq acts on (None when absent)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    limit_images: int | None = None
    remaining_images: int | None = None
