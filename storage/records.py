"""Record formats stored as sorted-set members, defined once for Python and Lua.

Schedule entries (`<kind>|<part>|...`) name work due at a time: a retry, a job event waiting
for its delivery, a delivery attempt, an economy batch to build or poll, the economy lane's next
collection, and (in the retention set) outputs to delete. Slots
(`tenant/job`) name a job in the in-flight and deadline sets. Usage fields (`model|kind`)
count a tenant's spend per model in its per-day usage hash. Metric fields
(`family|label values...|bucket`) hold the cluster's counters and histograms in one hash.
`lua_builders` renders the same formats into the Lua table `R` (`R.retry(t, id)`,
`R.slot(t, id)`, `R.metric(name, ...)`), so scripts build the members and Python alone parses
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from editq import telemetry
from editq.telemetry import Family

SEPARATOR = "|"
SLOT_SEPARATOR = "/"


class Kind(StrEnum):
    RETRY = "retry"
    EVENT = "evt"
    DELIVERY = "dlv"
    OUTPUTS = "out"
    BATCH = "bat"  #: an economy batch to move on (build, send, poll, ingest)
    COLLECT = "col"  #: economy jobs waiting to be put in a batch


#: Each kind's parts after the kind, in order; the last part may itself contain separators.
PARTS: dict[Kind, tuple[str, ...]] = {
    Kind.RETRY: ("tenant", "job_id"),
    Kind.EVENT: ("tenant", "job_id", "event"),
    Kind.DELIVERY: ("delivery_id",),
    Kind.OUTPUTS: ("tenant", "job_id"),
    Kind.BATCH: ("batch_id",),
    Kind.COLLECT: (),
}
#: The Lua builder's name for each kind.
LUA_NAMES = {
    Kind.RETRY: "retry",
    Kind.EVENT: "event",
    Kind.DELIVERY: "delivery",
    Kind.OUTPUTS: "outputs",
    Kind.BATCH: "batch",
    Kind.COLLECT: "collect",
}


@dataclass(frozen=True)
class Entry:
    """One schedule (or retention) entry; unused parts are empty."""

    kind: Kind
    tenant: str = ""
    job_id: str = ""
    event: str = ""
    delivery_id: str = ""
    batch_id: str = ""

    @classmethod
    def retry(cls, tenant: str, job_id: str) -> Entry:
        return cls(Kind.RETRY, tenant=tenant, job_id=job_id)

    @classmethod
    def delivery(cls, delivery_id: str) -> Entry:
        return cls(Kind.DELIVERY, delivery_id=delivery_id)

    @classmethod
    def parse(cls, member: str) -> Entry | None:
        """The entry a member holds, or None for a member of no known kind or shape."""
        kind_text, _, rest = member.partition(SEPARATOR)
        try:
            kind = Kind(kind_text)
        except ValueError:
            return None
        names = PARTS[kind]
        if not names:
            return cls(kind) if member == kind.value else None
        parts = rest.split(SEPARATOR, len(names) - 1)
        if len(parts) != len(names) or not all(parts):
            return None
        return cls(kind, **dict(zip(names, parts, strict=True)))

    def format(self) -> str:
        return SEPARATOR.join([self.kind.value, *(getattr(self, name) for name in PARTS[self.kind])])


@dataclass(frozen=True)
class Slot:
    """A job in the in-flight or deadline set."""

    tenant: str
    job_id: str

    @classmethod
    def parse(cls, member: str) -> Slot:
        tenant, _, job_id = member.partition(SLOT_SEPARATOR)
        return cls(tenant, job_id)

    def format(self) -> str:
        return f"{self.tenant}{SLOT_SEPARATOR}{self.job_id}"


@dataclass(frozen=True)
class UsageField:
    """A field of a tenant's per-day usage hash: `<model>|<kind>` (spent, settled, released, ...)."""

    model: str
    kind: str

    @classmethod
    def parse(cls, field: str) -> UsageField:
        model, _, kind = field.rpartition(SEPARATOR)
        return cls(model, kind)

    def format(self) -> str:
        return f"{self.model}{SEPARATOR}{self.kind}"


#: The last part of a histogram's sum field (its buckets' fields end in the bucket's index).
SUM = "sum"


def _clean(value: str) -> str:
    return value.replace(SEPARATOR, "_") or "none"


@dataclass(frozen=True)
class MetricField:
    """A field of the metrics hash: a counter's labelled value, a histogram's bucket count
    (`bucket`: its index, non-cumulative, len(buckets) being +Inf) or its sum (`bucket` SUM)."""

    family: Family
    labels: tuple[str, ...]
    bucket: str = ""

    @classmethod
    def parse(cls, field: str) -> MetricField | None:
        """The field's meaning, or None for a field of no known family or shape."""
        name, _, rest = field.partition(SEPARATOR)
        family = telemetry.BY_NAME.get(name)
        if family is None:
            return None
        parts = rest.split(SEPARATOR) if rest else []
        histogram = family.kind is telemetry.Kind.HISTOGRAM
        if len(parts) != len(family.labels) + histogram:
            return None
        if not histogram:
            return cls(family, tuple(parts))
        bucket = parts[-1]
        if bucket != SUM and not (bucket.isdigit() and int(bucket) <= len(family.buckets)):
            return None
        return cls(family, tuple(parts[:-1]), bucket)

    def format(self) -> str:
        parts = [self.family.name, *(_clean(v) for v in self.labels)]
        if self.bucket:
            parts.append(self.bucket)
        return SEPARATOR.join(parts)


def _lua_number(value: float) -> str:
    return repr(float(value))


def _metric_builders() -> list[str]:
    """`R.metric(name, ...)` builds a field; `R.metric_labels[name]` and `R.metric_buckets[name]`
    let the helpers refuse a family the Python side does not define."""
    labels = ", ".join(f"['{f.name}'] = {len(f.labels)}" for f in telemetry.RECORDED)
    buckets = ", ".join(
        f"['{f.name}'] = {{{', '.join(_lua_number(b) for b in f.buckets)}}}"
        for f in telemetry.RECORDED
        if f.kind is telemetry.Kind.HISTOGRAM
    )
    return [
        f"R.metric_labels = {{{labels}}}",
        f"R.metric_buckets = {{{buckets}}}",
        f"R.metric_sum = '{SUM}'",
        "function R.metric(name, ...) local parts = {name} "
        "for _, v in ipairs({...}) do v = string.gsub(tostring(v), '%|', '_') "
        "if v == '' then v = 'none' end parts[#parts + 1] = v end "
        f"return table.concat(parts, '{SEPARATOR}') end",
    ]


def lua_builders() -> str:
    """The Lua table `R`: a builder per entry kind, `R.slot(tenant, job_id)`,
    `R.usage_field(model, kind)` and the metric fields (`R.metric`)."""
    lines = ["local R = {}"]
    for kind, names in PARTS.items():
        body = f" .. '{SEPARATOR}' .. ".join([f"'{kind.value}'", *names]) if names else f"'{kind.value}'"
        lines.append(f"function R.{LUA_NAMES[kind]}({', '.join(names)}) return {body} end")
    lines.append(f"function R.slot(tenant, job_id) return tenant .. '{SLOT_SEPARATOR}' .. job_id end")
    lines.append(f"function R.usage_field(model, kind) return model .. '{SEPARATOR}' .. kind end")
    lines.extend(_metric_builders())
    return "\n".join(lines)
