"""Taking an ended economy batch's results into its jobs, and putting back what it did not run.

A result line settles its job once: only a job still running with the batch's id as its token
takes it, so a poller that dies mid-ingest and the one that resumes it never charge a job twice
(outputs are stored under the job's own keys, so storing them again overwrites them). A job
canceled meanwhile discards its result: it was released when it was canceled and nothing is
charged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import httpx

from editq import batchfile, cost
from editq.batchfile import COMPLETION_WINDOW_SECONDS, Result
from editq.catalogue import Lane
from editq.errors import InvalidRequest
from editq.job import Job, Status
from editq.options import EditPlan
from editq.storage import economy as economy_store
from editq.storage import jobs
from editq.storage.economy import Batch
from editq.worker import edit
from editq.worker.context import Context
from editq.worker.provider.batches import BatchClient, BatchInfo
from editq.worker.provider.failures import BadResponse, Retryable
from editq.worker.provider.openai import classify, parse_images

log = logging.getLogger("editq.economy")

#: Result lines taken in at once (each stores its outputs in S3 and settles in Redis); the file
#: streams in no faster than they are taken.
THREADS = 8


def _raise_any(done: set[Future[None]]) -> None:
    for future in done:
        future.result()


def results(
    ctx: Context, client: BatchClient, batch: Batch, info: BatchInfo, tick: Callable[[], None]
) -> None:
    """Ingest the output and error files of an ended batch; put back the jobs neither answered."""
    tenants = economy_store.members(ctx.db, batch.id)
    with ThreadPoolExecutor(THREADS, thread_name_prefix="editq-ingest") as pool:
        for file_id in (info.output_file_id, info.error_file_id):
            if file_id is None:
                continue
            with client.lines(file_id) as lines:
                running: set[Future[None]] = set()
                for line in lines:
                    running.add(pool.submit(take, ctx, batch, tenants, line))
                    if len(running) >= THREADS * 2:
                        done, running = wait(running, return_when=FIRST_COMPLETED)
                        _raise_any(done)
                    tick()
                _raise_any(wait(running).done)
    unanswered = _unanswered(info)
    for job in economy_store.jobs_of(ctx.db, tenants):
        if job.token == batch.id and job.status is Status.RUNNING:
            put_back(ctx, job, unanswered)
            tick()


def _unanswered(info: BatchInfo) -> dict[str, Any]:
    """The error a job carries when its batch ended without answering it."""
    if info.status == "failed":
        reasons = "; ".join(str(e.get("message") or e.get("code")) for e in info.errors[:5])
        return {
            "code": "economy_batch_failed",
            "message": f"the provider's batch {info.id} failed: {reasons or 'no reason given'}",
        }
    if info.status == "expired":
        return {
            "code": "economy_batch_expired",
            "message": f"the provider's batch {info.id} expired before running this job",
        }
    return {
        "code": "economy_result_missing",
        "message": f"the provider's batch {info.id} ended {info.status} without a result for this job",
    }


def take(ctx: Context, batch: Batch, tenants: dict[str, str], line: str) -> None:
    """One result line into its job (see the module's docstring for why this applies once)."""
    try:
        result = batchfile.parse_result(line)
    except ValueError as exc:
        log.warning("economy batch %s: an unreadable result line (%s)", batch.id, exc)
        return
    tenant = tenants.get(result.custom_id)
    job = jobs.get(ctx.db, tenant, result.custom_id) if tenant else None
    if job is None or job.token != batch.id:
        return
    if job.status is Status.CANCELED:
        usage = result.body.get("usage") if result.ok and result.body else None
        jobs.finish(ctx.db, job, outcome=Status.FAILED, usage=usage if isinstance(usage, dict) else None)
        return
    if job.status is not Status.RUNNING:
        return
    if result.ok:
        _succeeded(ctx, job, result)
    else:
        _failed(ctx, job, result)


def _succeeded(ctx: Context, job: Job, result: Result) -> None:
    plan = EditPlan.from_dict(job.plan)
    assert result.body is not None
    assert result.status is not None
    try:
        answer = parse_images(result.body, plan.n, status=result.status, request_id=result.request_id)
    except BadResponse as exc:
        usage = result.body.get("usage")
        edit.fail(ctx, job, exc.to_error(), usage if isinstance(usage, dict) else None)
        return
    edit.complete(ctx, job, plan, answer)


def _failed(ctx: Context, job: Job, result: Result) -> None:
    """A line the provider answered with an error (a retryable one puts the job back), or one
    it never ran (the batch expired or was canceled before it): the job goes back in line."""
    if result.status is None:
        code = str((result.error or {}).get("code") or "not_run")
        message = str((result.error or {}).get("message") or "the batch did not run this request")
        put_back(ctx, job, {"code": f"economy_{code}", "message": message})
        return
    exc = classify(httpx.Response(result.status, json=result.body or {}))
    exc.request_id = exc.request_id or result.request_id
    if isinstance(exc, Retryable):
        put_back(ctx, job, exc.to_error())
    else:
        edit.fail(ctx, job, exc.to_error())


def put_back(ctx: Context, job: Job, error: dict[str, Any]) -> None:
    """Back in line after its batch ended without a result: the economy lane again, or the
    interactive lane when another batch could not finish before the job's Cancel-After
    deadline. After EDITQ_ECONOMY_MAX_BATCHES batches the job fails with `error`."""
    settings = ctx.settings
    batches = int(job.raw.get("econ_batches") or 0)
    if batches >= settings.economy_max_batches:
        edit.fail(ctx, job, error | {"economy_batches": batches})
        return
    lane, amount, estimate = Lane.ECONOMY, job.reserved, None
    now_ms = ctx.db.clock.ms()
    if job.deadline is not None and now_ms < job.deadline < now_ms + COMPLETION_WINDOW_SECONDS * 1000:
        priced = _interactive_estimate(ctx, job)
        if priced is not None:
            lane, amount, estimate = Lane.INTERACTIVE, priced.micros, priced.to_dict()
    moved = economy_store.put_back(ctx.db, job, lane=lane, amount=amount, estimate=estimate, error=error)
    log.info("economy job %s back in line (%s): %s", job.id, moved, error.get("code"))


def _interactive_estimate(ctx: Context, job: Job) -> cost.Estimate | None:
    """What the job may cost in the interactive lane (None: it cannot be priced there)."""
    model = ctx.catalogue.models.get(job.model)
    if model is None:
        return None
    try:
        return cost.estimate(
            model,
            EditPlan.from_dict(job.plan),
            [(int(s["width"]), int(s["height"])) for s in job.sources],
            (int(job.mask["width"]), int(job.mask["height"])) if job.mask else None,
            Lane.INTERACTIVE,
        )
    except InvalidRequest:
        return None
