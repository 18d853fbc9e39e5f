"""Names of every Redis key and S3 object editq writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Redis key names under one prefix. The Lua scripts build the same names."""

    prefix: str

    @property
    def models_served(self) -> str:
        return f"{self.prefix}:models:served"

    @property
    def models_unavailable(self) -> str:
        return f"{self.prefix}:models:unavailable"

    @property
    def models_refresh(self) -> str:
        return f"{self.prefix}:models:refresh"

    def tenant(self, tenant: str) -> str:
        return f"{self.prefix}:tenant:{tenant}"

    @property
    def tenants(self) -> str:
        return f"{self.prefix}:tenants"

    def tenant_keys(self, tenant: str) -> str:
        return f"{self.prefix}:tenant:{tenant}:keys"

    def api_key(self, digest: str) -> str:
        return f"{self.prefix}:apikey:{digest}"

    def disabled_urls(self, tenant: str) -> str:
        return f"{self.prefix}:tenant:{tenant}:disabled_urls"

    def job(self, tenant: str, job_id: str) -> str:
        return f"{self.prefix}:job:{tenant}:{job_id}"

    def jobs(self, tenant: str) -> str:
        return f"{self.prefix}:jobs:{tenant}"

    def events(self, tenant: str, job_id: str) -> str:
        return f"{self.prefix}:ev:{tenant}:{job_id}"

    def queue(self, tenant: str, priority: str) -> str:
        return f"{self.prefix}:q:{tenant}:{'1' if priority == 'batch' else '0'}"

    def image(self, tenant: str, sha256: str) -> str:
        return f"{self.prefix}:img:{tenant}:{sha256}"

    def budget(self, tenant: str, period: str) -> str:
        return f"{self.prefix}:budget:{tenant}:{period}"

    def usage(self, tenant: str, day: str) -> str:
        return f"{self.prefix}:usage:{tenant}:{day}"

    def ledger(self, tenant: str) -> str:
        return f"{self.prefix}:ledger:{tenant}"

    def reuse(self, tenant: str, fingerprint: str) -> str:
        return f"{self.prefix}:reuse:{tenant}:{fingerprint}"

    def delivery(self, delivery_id: str) -> str:
        return f"{self.prefix}:dlv:{delivery_id}"

    def delivery_attempts(self, delivery_id: str) -> str:
        return f"{self.prefix}:dlv:{delivery_id}:attempts"

    def job_deliveries(self, tenant: str, job_id: str) -> str:
        return f"{self.prefix}:dlvs:{tenant}:{job_id}"

    def running(self, tenant: str) -> str:
        return f"{self.prefix}:running:{tenant}"

    @property
    def inflight(self) -> str:
        return f"{self.prefix}:inflight"

    @property
    def schedule(self) -> str:
        return f"{self.prefix}:sched"

    @property
    def deadlines(self) -> str:
        return f"{self.prefix}:deadlines"

    @property
    def holds(self) -> str:
        return f"{self.prefix}:holds"

    @property
    def retention(self) -> str:
        return f"{self.prefix}:retention"

    @property
    def fair_cfg(self) -> str:
        return f"{self.prefix}:fair:cfg"

    @property
    def limiter(self) -> str:
        return f"{self.prefix}:lim"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    @property
    def worker_slots(self) -> str:
        return f"{self.prefix}:workers:slots"

    @property
    def wake(self) -> str:
        return f"{self.prefix}:wake"


def source_object(tenant: str, sha256: str) -> str:
    return f"t/{tenant}/src/{sha256}"


def output_object(tenant: str, job_id: str, index: int, extension: str) -> str:
    return f"t/{tenant}/out/{job_id}/{index}.{extension}"


def output_prefix(tenant: str, job_id: str) -> str:
    return f"t/{tenant}/out/{job_id}/"
