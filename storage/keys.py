"""Names of every Redis key and S3 object editq writes.

`TEMPLATES` is the one definition of the Redis key names: `Keys` builds them in Python, and
`lua_builders` renders the same templates into the Lua table `K` that every script is loaded
with (`K.job(t, id)`, `K.inflight()`), so no script spells a key itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Each key's name after `<prefix>:`, with `{placeholders}` for its parts, in argument order.
TEMPLATES: dict[str, str] = {
    "models_served": "models:served",
    "models_unavailable": "models:unavailable",
    "models_refresh": "models:refresh",
    "tenant": "tenant:{tenant}",
    "tenants": "tenants",
    "tenant_keys": "tenant:{tenant}:keys",
    "api_key": "apikey:{digest}",
    "disabled_urls": "tenant:{tenant}:disabled_urls",
    "job": "job:{tenant}:{job_id}",
    "jobs": "jobs:{tenant}",
    "events": "ev:{tenant}:{job_id}",
    "queue": "q:{tenant}:{lane}",
    "image": "img:{tenant}:{sha256}",
    "budget_day": "budget:{tenant}:d:{day}",
    "budget_month": "budget:{tenant}:m:{month}",
    "budget_total": "budget:{tenant}:total",
    "usage": "usage:{tenant}:{day}",
    "ledger": "ledger:{tenant}",
    "credits": "credits:{tenant}",
    "plan": "plan:{name}",
    "plans": "plans",
    "reuse": "reuse:{tenant}:{fingerprint}",
    "idempotency": "idem:{tenant}:{key_hash}",
    "topup_idempotency": "idem:{tenant}:topup:{key_hash}",
    "hold": "hold:{hold_id}",
    "holds": "holds",
    "delivery": "dlv:{delivery_id}",
    "delivery_attempts": "dlv:{delivery_id}:attempts",
    "job_deliveries": "dlvs:{tenant}:{job_id}",
    "running": "running:{tenant}",
    "inflight": "inflight",
    "schedule": "sched",
    "deadlines": "deadlines",
    "retention": "retention",
    "fair": "fair",
    "fair_cfg": "fair:cfg",
    "fair_clock": "fair:clock",
    "fair_vt": "fair:vt",
    "sequence": "seq",
    "limiter": "lim:{account}",
    "limiter_sent": "lim:{account}:sent",
    "limiter_rejected": "lim:{account}:rej",
    "account_inflight": "inflight:{account}",
    "workers": "workers",
    "worker_slots": "workers:slots",
    "wake": "wake",
    "econ_pending": "econ:pending",
    "econ_batches": "econ:batches",
    "econ_batch": "econ:b:{batch_id}",
    "econ_batch_jobs": "econ:b:{batch_id}:jobs",
    "econ_batch_files": "econ:b:{batch_id}:files",
    "metrics": "metrics",
    "turn": "{name}",
}

#: Queue lanes: interactive jobs are admitted before batch ones.
LANES = {"interactive": "0", "batch": "1"}

_PART = re.compile(r"\{(\w+)\}")


def parameters(name: str) -> list[str]:
    """The parts a key takes, in order."""
    return _PART.findall(TEMPLATES[name])


@dataclass(frozen=True)
class Keys:
    """Redis key names under one prefix."""

    prefix: str

    def build(self, name: str, *parts: str) -> str:
        """The key `name` with its parts filled in order (the twin of Lua's `K[name]`)."""
        names = parameters(name)
        if len(parts) != len(names):
            raise TypeError(f"key {name} takes {len(names)} parts, got {len(parts)}")
        return f"{self.prefix}:{TEMPLATES[name].format(**dict(zip(names, parts, strict=True)))}"

    @property
    def models_served(self) -> str:
        return self.build("models_served")

    @property
    def models_unavailable(self) -> str:
        return self.build("models_unavailable")

    @property
    def models_refresh(self) -> str:
        return self.build("models_refresh")

    def tenant(self, tenant: str) -> str:
        return self.build("tenant", tenant)

    @property
    def tenants(self) -> str:
        return self.build("tenants")

    def tenant_keys(self, tenant: str) -> str:
        return self.build("tenant_keys", tenant)

    def api_key(self, digest: str) -> str:
        return self.build("api_key", digest)

    def disabled_urls(self, tenant: str) -> str:
        return self.build("disabled_urls", tenant)

    def job(self, tenant: str, job_id: str) -> str:
        return self.build("job", tenant, job_id)

    def jobs(self, tenant: str) -> str:
        return self.build("jobs", tenant)

    def events(self, tenant: str, job_id: str) -> str:
        return self.build("events", tenant, job_id)

    def queue(self, tenant: str, priority: str) -> str:
        return self.build("queue", tenant, LANES.get(priority, LANES["interactive"]))

    def image(self, tenant: str, sha256: str) -> str:
        return self.build("image", tenant, sha256)

    def budget_day(self, tenant: str, day: str) -> str:
        return self.build("budget_day", tenant, day)

    def budget_month(self, tenant: str, month: str) -> str:
        return self.build("budget_month", tenant, month)

    def budget_total(self, tenant: str) -> str:
        return self.build("budget_total", tenant)

    def usage(self, tenant: str, day: str) -> str:
        return self.build("usage", tenant, day)

    def ledger(self, tenant: str) -> str:
        return self.build("ledger", tenant)

    def credits(self, tenant: str) -> str:
        """A tenant's credit balance and the credits its jobs hold."""
        return self.build("credits", tenant)

    def plan(self, name: str) -> str:
        return self.build("plan", name)

    @property
    def plans(self) -> str:
        return self.build("plans")

    def reuse(self, tenant: str, fingerprint: str) -> str:
        return self.build("reuse", tenant, fingerprint)

    def idempotency(self, tenant: str, key_hash: str) -> str:
        return self.build("idempotency", tenant, key_hash)

    def topup_idempotency(self, tenant: str, key_hash: str) -> str:
        """A credit top-up's `Idempotency-Key`: what it asked and what it answered."""
        return self.build("topup_idempotency", tenant, key_hash)

    def hold(self, hold_id: str) -> str:
        return self.build("hold", hold_id)

    def delivery(self, delivery_id: str) -> str:
        return self.build("delivery", delivery_id)

    def delivery_attempts(self, delivery_id: str) -> str:
        return self.build("delivery_attempts", delivery_id)

    def job_deliveries(self, tenant: str, job_id: str) -> str:
        return self.build("job_deliveries", tenant, job_id)

    def running(self, tenant: str) -> str:
        return self.build("running", tenant)

    @property
    def inflight(self) -> str:
        return self.build("inflight")

    @property
    def schedule(self) -> str:
        return self.build("schedule")

    @property
    def deadlines(self) -> str:
        return self.build("deadlines")

    @property
    def holds(self) -> str:
        return self.build("holds")

    @property
    def retention(self) -> str:
        return self.build("retention")

    @property
    def fair_cfg(self) -> str:
        return self.build("fair_cfg")

    def limiter(self, account: str) -> str:
        """An account's limiter: GCRA state, effective rates, pause and probe state."""
        return self.build("limiter", account)

    def account_inflight(self, account: str) -> str:
        """The in-flight leases of an account's calls (`inflight` holds every account's)."""
        return self.build("account_inflight", account)

    @property
    def workers(self) -> str:
        return self.build("workers")

    @property
    def worker_slots(self) -> str:
        return self.build("worker_slots")

    @property
    def wake(self) -> str:
        return self.build("wake")

    @property
    def econ_pending(self) -> str:
        """Economy jobs waiting to be put in a batch (slots, scored by when they joined)."""
        return self.build("econ_pending")

    @property
    def econ_batches(self) -> str:
        """Economy batches not yet done (ids, scored by when they were opened)."""
        return self.build("econ_batches")

    def econ_batch(self, batch_id: str) -> str:
        return self.build("econ_batch", batch_id)

    def econ_batch_jobs(self, batch_id: str) -> str:
        """The batch's jobs: job id -> tenant."""
        return self.build("econ_batch_jobs", batch_id)

    def econ_batch_files(self, batch_id: str) -> str:
        """Sources uploaded to the provider for the batch: `tenant/sha256` -> file id."""
        return self.build("econ_batch_files", batch_id)

    @property
    def metrics(self) -> str:
        """The cluster's counters and histograms (storage/metrics.py)."""
        return self.build("metrics")

    def turn(self, name: str) -> str:
        """A once-per-interval marker (`swept`, `trimmed`, ...)."""
        return self.build("turn", name)


def lua_builders() -> str:
    """The Lua table `K`: one function per template, taking its parts in order (needs `P`)."""
    lines = ["local K = {}"]
    for name, template in TEMPLATES.items():
        params = parameters(name)
        pieces = _PART.split(f"{{prefix}}:{template}")
        # literals sit at even positions, placeholders at odd ones
        body = " .. ".join(
            _lua_literal(p) if i % 2 == 0 else ("P" if p == "prefix" else p)
            for i, p in enumerate(pieces)
            if p
        )
        lines.append(f"function K.{name}({', '.join(params)}) return {body} end")
    lanes = " ".join(f"if priority == '{p}' then return '{lane}' end" for p, lane in LANES.items())
    lines.append(f"function K.lane(priority) {lanes} return '{LANES['interactive']}' end")
    return "\n".join(lines)


def _lua_literal(piece: str) -> str:
    if not re.fullmatch(r"[\w:|/.-]+", piece):
        raise ValueError(f"unsafe literal in a key template: {piece!r}")
    return f"'{piece}'"


def source_object(tenant: str, sha256: str) -> str:
    return f"t/{tenant}/src/{sha256}"


def output_object(tenant: str, job_id: str, index: int, extension: str) -> str:
    return f"t/{tenant}/out/{job_id}/{index}.{extension}"


def output_prefix(tenant: str, job_id: str) -> str:
    return f"t/{tenant}/out/{job_id}/"
