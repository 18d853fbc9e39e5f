"""The one clock every date decision reads: retirements, budget periods, schedules, retention.

It is the system clock shifted by `EDITQ_CLOCK_OFFSET` seconds (0 by default), so a whole stack
(API, workers, beat and the Lua scripts, which get the same offset) can rehearse a later date,
for example the day after a model retires. Durations (timeouts, latencies) use the monotonic
clock and are never shifted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime


@dataclass(frozen=True)
class Clock:
    """Wall-clock time, shifted by `offset_seconds`."""

    offset_seconds: float = 0.0

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time() + self.offset_seconds

    def ms(self) -> int:
        """Milliseconds since the epoch."""
        return int(self.time() * 1000)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def today(self) -> date:
        """The UTC date."""
        return self.now().date()

    @property
    def offset_ms(self) -> int:
        return int(self.offset_seconds * 1000)


SYSTEM = Clock()


def offset_to(moment: datetime) -> float:
    """The offset that makes the clock read `moment` now (for rehearsals and tests)."""
    return moment.timestamp() - time.time()
