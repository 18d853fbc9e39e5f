"""Where clients fetch outputs: through the API (tenant-checked) or presigned S3 URLs."""

from __future__ import annotations

from typing import Any

from editq.job import Job
from editq.public import EditJob, OutputUrl, edit_job
from editq.storage.backend import Backend
from editq.storage.jobs import queue_position


def url_builder(db: Backend) -> OutputUrl:
    settings = db.settings
    if settings.output_urls == "presigned":

        def presigned(job: Job, index: int, output: dict[str, Any]) -> str:
            return db.objects.presign(output["key"], settings.presign_seconds)

        return presigned
    base = settings.api_base_url

    def served(job: Job, index: int, output: dict[str, Any]) -> str:
        return f"{base}/v1/edits/{job.id}/outputs/{index}"

    return served


def public(db: Backend, job: Job, *, position: bool = True) -> EditJob:
    """The job as clients see it, with its place in line while it waits."""
    where = queue_position(db, job) if position and job.status.value == "queued" else None
    return edit_job(job, url_builder(db), where)
