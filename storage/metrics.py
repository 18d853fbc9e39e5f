"""The cluster's counters and histograms, in one Redis hash (`K.metrics`).

Job transitions record theirs inside the Lua scripts that make them (`_lib.lua`: `measure`,
`count_metric`), so a count moves exactly when the transition happens, whichever process made
it. Workers add provider calls through a `Recorder`: an in-process buffer whose increments go
out with the worker's heartbeat (one pipelined round trip it already makes). The API reads the
hash when `/metrics` is scraped, so every replica reports the same cluster-wide series.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from editq.storage.backend import Backend
from editq.storage.errors import StorageError
from editq.storage.keys import Keys
from editq.storage.records import SUM, MetricField
from editq.telemetry import BY_NAME, Family, Kind, bucket_index


class Recorder:
    """Increments waiting for the next flush; safe to share between a process's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deltas: dict[str, float] = {}

    def _add(self, field_name: str, by: float) -> None:
        with self._lock:
            self._deltas[field_name] = self._deltas.get(field_name, 0) + by

    def count(self, family: Family, *labels: str, by: int = 1) -> None:
        self._add(MetricField(family, labels).format(), by)

    def observe(self, family: Family, value: float, *labels: str) -> None:
        value = max(0.0, value)
        self._add(MetricField(family, labels, str(bucket_index(family, value))).format(), 1)
        self._add(MetricField(family, labels, SUM).format(), value)

    def drain(self) -> dict[str, float]:
        with self._lock:
            deltas, self._deltas = self._deltas, {}
        return deltas

    def restore(self, deltas: Mapping[str, float]) -> None:
        """Put back increments whose flush failed (the fields are bounded, so this cannot grow
        without limit while Redis is away)."""
        for name, by in deltas.items():
            self._add(name, by)


def add(pipe: Any, keys: Keys, deltas: Mapping[str, float]) -> None:
    """Queue the increments on a pipeline."""
    for name, by in deltas.items():
        if float(by).is_integer():
            pipe.hincrby(keys.metrics, name, int(by))
        else:
            pipe.hincrbyfloat(keys.metrics, name, by)


def count(pipe: Any, keys: Keys, family: Family, *labels: str) -> None:
    """Queue one increment of a counter on a pipeline the caller runs anyway."""
    pipe.hincrby(keys.metrics, MetricField(family, labels).format(), 1)


def flush(db: Backend, recorder: Recorder) -> None:
    """Write the recorder's increments now (a worker's shutdown)."""
    deltas = recorder.drain()
    if not deltas:
        return
    pipe = db.redis.pipeline(transaction=False)
    add(pipe, db.keys, deltas)
    try:
        pipe.execute()
    except StorageError:
        recorder.restore(deltas)
        raise


@dataclass
class Series:
    """One labelled series of a family: a counter's value, or a histogram's buckets and sum."""

    value: float = 0.0
    buckets: list[int] = field(default_factory=list)
    sum: float = 0.0

    def cumulative(self, family: Family) -> list[tuple[str, float]]:
        """(le, count) pairs as Prometheus wants them, ending with +Inf."""
        counts = self.buckets + [0] * (len(family.buckets) + 1 - len(self.buckets))
        pairs, running = [], 0
        for bound, n in zip([*map(str, family.buckets), "+Inf"], counts, strict=True):
            running += n
            pairs.append((bound, float(running)))
        return pairs


def read(db: Backend) -> dict[str, dict[tuple[str, ...], Series]]:
    """Every recorded family's series, by family name and label values."""
    found: dict[str, dict[tuple[str, ...], Series]] = {name: {} for name in BY_NAME}
    for name, raw in db.redis.hgetall(db.keys.metrics).items():
        parsed = MetricField.parse(name)
        if parsed is None:
            continue
        family = parsed.family
        series = found[family.name].setdefault(parsed.labels, Series())
        if family.kind is not Kind.HISTOGRAM:
            series.value = float(raw) / family.scale
        elif parsed.bucket == SUM:
            series.sum = float(raw)
        else:
            index = int(parsed.bucket)
            if len(series.buckets) <= index:
                series.buckets.extend([0] * (index + 1 - len(series.buckets)))
            series.buckets[index] = int(float(raw))
    return found
