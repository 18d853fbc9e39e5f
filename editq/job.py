"""The job record, as read from its Redis hash (`editq.public` has how clients see it)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from editq.catalogue import Lane


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self not in (Status.QUEUED, Status.RUNNING)


TERMINAL = frozenset(s.value for s in Status if s.terminal)


def iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(value: str | None, default: Any) -> Any:
    if not value:
        return default
    return json.loads(value)


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


@dataclass
class Job:
    """One edit job, read from its Redis hash."""

    id: str
    tenant: str
    status: Status
    model: str
    model_requested: str
    prompt: str
    priority: str
    plan: dict[str, Any]
    options: dict[str, Any]
    sources: list[dict[str, Any]]
    mask: dict[str, Any] | None
    images: int
    webhook_url: str | None
    webhook_events: list[str]
    metadata: dict[str, str]
    estimate: dict[str, Any]
    reserved: int
    actual: int | None
    usage: dict[str, Any] | None
    outputs: list[dict[str, Any]]
    error: dict[str, Any] | None
    created_at: int
    updated_at: int | None
    started_at: int | None
    finished_at: int | None
    deadline: int | None
    token: str
    runs: int
    attempts: int
    rate_limited: int
    losses: int
    reused_from: str | None
    fingerprint: str
    reusable: bool
    raw: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def model_explicit(self) -> bool:
        """The client named the model (jobs from before the field existed count as named)."""
        return self.raw.get("model_explicit", "1") != "0"

    @property
    def model_note(self) -> str | None:
        """Why the job runs on another model than the one it would have had."""
        return self.raw.get("model_note") or None

    @property
    def lane(self) -> Lane:
        """The lane the job is in now (economy jobs can be moved to the interactive lane)."""
        return Lane.ECONOMY if self.raw.get("lane") == Lane.ECONOMY else Lane.INTERACTIVE

    @property
    def economy_batch(self) -> str | None:
        """editq's id of the economy batch the job is in, if any."""
        return self.raw.get("ebatch") or None

    @property
    def provider_batch_id(self) -> str | None:
        """The provider's id of the batch that runs (or ran) the job."""
        return self.raw.get("provider_batch") or None

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Job:
        return cls(
            id=h["id"],
            tenant=h["tenant"],
            status=Status(h["status"]),
            model=h.get("model", ""),
            model_requested=h.get("model_requested", ""),
            prompt=h.get("prompt", ""),
            priority=h.get("priority", "interactive"),
            plan=_json(h.get("plan"), {}),
            options=_json(h.get("options"), {}),
            sources=_json(h.get("sources"), []),
            mask=_json(h.get("mask"), None),
            images=int(h.get("images") or 1),
            webhook_url=h.get("webhook_url") or None,
            webhook_events=_json(h.get("webhook_events"), []),
            metadata=_json(h.get("metadata"), {}),
            estimate=_json(h.get("estimate"), {}),
            reserved=int(h.get("reserved") or 0),
            actual=_int(h.get("actual")) if h.get("settled") == "1" else None,
            usage=_json(h.get("usage"), None),
            outputs=_json(h.get("outputs"), []),
            error=_json(h.get("error"), None),
            created_at=int(h.get("created_at") or 0),
            updated_at=_int(h.get("updated_at")),
            started_at=_int(h.get("started_at")),
            finished_at=_int(h.get("finished_at")),
            deadline=_int(h.get("deadline")),
            token=h.get("token", ""),
            runs=int(h.get("runs") or 0),
            attempts=int(h.get("attempts") or 0),
            rate_limited=int(h.get("rate_limited") or 0),
            losses=int(h.get("losses") or 0),
            reused_from=h.get("reused_from") or None,
            fingerprint=h.get("fingerprint", ""),
            reusable=h.get("reusable") == "1",
            raw=h,
        )

    @property
    def terminal(self) -> bool:
        return self.status.terminal
