"""The economy lane: jobs with priority=economy go to the provider as lines of a Batch API file,
at the batch price, and come back within the batch's 24-hour window.

Everything runs from the Redis schedule. The collection's entry falls due once the oldest
waiting job has waited EDITQ_ECONOMY_WINDOW (at once when EDITQ_ECONOMY_MAX_JOBS wait); each
batch's entry falls due for its next step or poll. The dispatcher that claims an entry (a
lease: one poller per batch across all workers) hands it to the `editq.economy` task, which
runs `collect` or `advance` here. Every step is idempotent, so a worker killed anywhere leaves
the batch to the next poller: jobs are never lost, a batch is never created twice (it carries
editq's id in its metadata and is looked up before creating), and results are settled once
per job (the job's token is the batch id; settling clears nothing a second ingest could reuse).
"""

from __future__ import annotations

import logging
import tempfile
import time
from typing import Any

from editq import batchfile, ids
from editq.images import EXTENSIONS
from editq.job import Job, Status
from editq.options import EditPlan
from editq.storage import economy as economy_store
from editq.storage import schedule
from editq.storage.economy import CLAIM_MS, Batch, State
from editq.storage.errors import StorageError, StorageUnavailable
from editq.storage.keys import source_object
from editq.storage.records import Entry, Kind
from editq.worker import edit, ingest
from editq.worker.context import Context
from editq.worker.provider.batches import PURPOSE_BATCH, PURPOSE_IMAGE, BatchClient, BatchInfo
from editq.worker.provider.failures import ProviderError

log = logging.getLogger("editq.economy")

#: Presigned source URLs (EDITQ_ECONOMY_SOURCES=url) outlive the batch's window by a day.
URL_SECONDS = batchfile.COMPLETION_WINDOW_SECONDS + 86400
#: The input file is built in memory up to this size, then on disk.
SPOOL_BYTES = 16 * 1024 * 1024


class Keeper:
    """Extends the poller's claim on a batch while a long step runs."""

    def __init__(self, ctx: Context, batch_id: str) -> None:
        self.ctx = ctx
        self.batch_id = batch_id
        self.last = time.monotonic()

    def tick(self) -> None:
        if time.monotonic() - self.last > CLAIM_MS / 3000:
            economy_store.keep(self.ctx.db, self.batch_id, CLAIM_MS)
            self.last = time.monotonic()


def collect(ctx: Context) -> str | None:
    """Open a batch with the longest-waiting jobs, as many as one input file takes, and send it.
    Returns the batch's id (None when nothing was waiting)."""
    settings = ctx.settings
    picked: list[economy_store.Waiting] = []
    size = 0
    for waiting in economy_store.waiting(ctx.db, settings.economy_max_jobs):
        if picked and size + waiting.line_bytes > settings.economy_max_bytes:
            break
        picked.append(waiting)
        size += waiting.line_bytes
    batch_id = ids.new_id("ebatch")
    if economy_store.take(ctx.db, batch_id, picked, CLAIM_MS) == 0:
        return None
    log.info("economy batch %s opened with %d jobs", batch_id, len(picked))
    advance(ctx, batch_id)
    return batch_id


def advance(ctx: Context, batch_id: str) -> None:
    """Move the batch on from where it stands: build and upload its file, create it at the
    provider, poll it, ingest its results. Reschedules its next poll, or closes it."""
    db = ctx.db
    batch = economy_store.get(db, batch_id)
    if batch is None or batch.state is State.DONE:
        schedule.done(db, Entry(Kind.BATCH, batch_id=batch_id))
        return
    client = ctx.batches
    if client is None:
        log.error("economy batch %s waits: the provider has no batch API editq speaks", batch_id)
        _later(ctx, batch_id)
        return
    try:
        if batch.state is State.OPEN:
            batch = _upload(ctx, client, batch)
        if batch is not None and batch.state is State.UPLOADED:
            batch = _submit(ctx, client, batch)
        if batch is not None and batch.state is State.SUBMITTED:
            _poll(ctx, client, batch)
    except (ProviderError, StorageUnavailable) as exc:
        # the step is tried again at the next poll; a step that keeps failing never loses the
        # batch's jobs (they stay running in it, and its record remembers where it stood)
        log.warning("economy batch %s: %s; trying again later", batch_id, exc)
        _later(ctx, batch_id)


def _later(ctx: Context, batch_id: str) -> None:
    db = ctx.db
    economy_store.reschedule(db, batch_id, db.clock.ms() + int(ctx.settings.economy_poll_seconds * 1000))


def _running(ctx: Context, batch: Batch) -> list[Job]:
    """The batch's jobs still waiting for their result."""
    found = economy_store.jobs_of(ctx.db, economy_store.members(ctx.db, batch.id))
    return [j for j in found if j.token == batch.id and j.status is Status.RUNNING]


def _upload(ctx: Context, client: BatchClient, batch: Batch) -> Batch | None:
    """Write the batch's input file (one line per running job) and upload it."""
    keeper = Keeper(ctx, batch.id)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        lines = 0
        for job in _running(ctx, batch):
            line = _line(ctx, client, batch.id, job)
            if line is not None:
                spool.write(line)
                lines += 1
            keeper.tick()
        if lines == 0:
            _close(ctx, client, batch, "no job of the batch is left to send")
            return None
        spool.seek(0)
        file_id = client.upload(f"editq-{batch.id}.jsonl", spool, "application/jsonl", PURPOSE_BATCH)
    economy_store.update(ctx.db, batch.id, state=State.UPLOADED, input_file_id=file_id, lines=lines)
    log.info("economy batch %s: %d lines uploaded as %s", batch.id, lines, file_id)
    return economy_store.get(ctx.db, batch.id)


def _line(ctx: Context, client: BatchClient, batch_id: str, job: Job) -> bytes | None:
    """The job's request line; None (and the job failed) when a source is no longer stored."""
    try:
        images = [_reference(ctx, client, batch_id, job.tenant, s) for s in job.sources]
        mask = None
        if job.mask:
            mask = _reference(ctx, client, batch_id, job.tenant, job.mask | {"content_type": "image/png"})
    except StorageUnavailable:
        raise
    except StorageError as exc:
        edit.fail(
            ctx, job, {"code": "source_missing", "message": f"a source image is no longer stored: {exc}"}
        )
        return None
    body = batchfile.request_body(EditPlan.from_dict(job.plan), images, mask, job.raw.get("user") or None)
    return batchfile.request_line(job.id, body)


def _reference(
    ctx: Context, client: BatchClient, batch_id: str, tenant: str, source: dict[str, Any]
) -> dict[str, str]:
    """How the batch line points at a source: a presigned URL, or a provider file uploaded once
    per batch."""
    db = ctx.db
    key = source_object(tenant, source["sha256"])
    if ctx.settings.economy_sources == "url":
        return batchfile.reference(url=db.objects.presign(key, URL_SECONDS))
    name = f"{tenant}/{source['sha256']}"
    file_id = economy_store.uploaded_file(db, batch_id, name)
    if file_id is None:
        content_type = str(source.get("content_type") or "image/png")
        filename = f"{source['sha256'][:32]}.{EXTENSIONS.get(content_type, 'png')}"
        file_id = client.upload(filename, db.objects.get(key), content_type, PURPOSE_IMAGE)
        economy_store.remember_file(db, batch_id, name, file_id)
    return batchfile.reference(file_id=file_id)


def _submit(ctx: Context, client: BatchClient, batch: Batch) -> Batch | None:
    """Create the provider's batch, unless a run that died after creating it already did."""
    if batch.open <= 0:
        _close(ctx, client, batch, "every job was canceled before the batch was sent")
        return None
    info = client.find(batchfile.METADATA_KEY, batch.id) or client.create(
        batch.input_file_id, {batchfile.METADATA_KEY: batch.id}
    )
    economy_store.update(
        ctx.db, batch.id, state=State.SUBMITTED, provider_batch_id=info.id, provider_status=info.status
    )
    economy_store.mark_provider_batch(ctx.db, info.id, _running(ctx, batch))
    log.info("economy batch %s sent as %s", batch.id, info.id)
    return economy_store.get(ctx.db, batch.id)


def _poll(ctx: Context, client: BatchClient, batch: Batch) -> None:
    """Ask the provider where the batch is (cancel it first if none of its jobs is left);
    ingest it once it ended, else poll again later."""
    db = ctx.db
    info = _retrieve(client, batch)
    if batch.open <= 0 and not batch.cancel_sent and not info.terminal:
        info = client.cancel(batch.provider_batch_id)
        economy_store.update(db, batch.id, cancel_sent=1)
        log.info("economy batch %s (%s): every job was canceled; batch canceled", batch.id, info.id)
    economy_store.update(db, batch.id, provider_status=info.status)
    if not info.terminal:
        _later(ctx, batch.id)
        return
    ingest.results(ctx, client, batch, info, Keeper(ctx, batch.id).tick)
    _close(ctx, client, batch, f"the provider's batch ended {info.status}")


def _retrieve(client: BatchClient, batch: Batch) -> BatchInfo:
    """The provider's batch; one it no longer knows (404) counts as failed, so its jobs go back
    in line rather than wait for it forever."""
    try:
        return client.retrieve(batch.provider_batch_id)
    except ProviderError as exc:
        if exc.status != 404:
            raise
        gone = {"code": "batch_not_found", "message": f"the provider no longer knows this batch: {exc}"}
        return BatchInfo(batch.provider_batch_id, "failed", errors=[gone])


def _close(ctx: Context, client: BatchClient, batch: Batch, why: str) -> None:
    """Put back whatever still waits on the batch, delete its files at the provider, and mark
    it done."""
    for job in _running(ctx, batch):
        ingest.put_back(ctx, job, {"code": "economy_batch_closed", "message": why})
    current = economy_store.get(ctx.db, batch.id)
    files = [current.input_file_id] if current and current.input_file_id else []
    files += economy_store.uploaded_files(ctx.db, batch.id)
    for file_id in files:
        try:
            client.delete_file(file_id)
        except ProviderError:  # an undeleted file only costs storage at the provider
            log.warning("could not delete provider file %s of economy batch %s", file_id, batch.id)
    economy_store.close(ctx.db, batch.id)
    log.info("economy batch %s done: %s", batch.id, why)
