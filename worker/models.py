"""Following what the provider serves: the periodic listing of the account's models, and
moving a job that took an unavailable default model to that model's successor."""

from __future__ import annotations

import logging
import threading

from editq import cost, lifecycle
from editq.credits import Quote, Terms, quote
from editq.errors import InvalidRequest
from editq.job import Job
from editq.lifecycle import Availability
from editq.options import EditOptions, EditPlan, plan_edit
from editq.storage import credits as credit_store
from editq.storage import jobs
from editq.storage import models as model_store
from editq.storage.errors import StorageError
from editq.worker.context import Context
from editq.worker.provider.failures import ProviderError

log = logging.getLogger("editq.models")

#: After a failed listing, the next try comes this much later (not a whole refresh interval).
RETRY_LISTING_SECONDS = 60.0


def refresh(ctx: Context, *, force: bool = False) -> bool:
    """Ask the provider which models the account serves, if it is this process's turn."""
    db, settings = ctx.db, ctx.settings
    if not model_store.refresh_due(db, settings.models_refresh_seconds, force=force):
        return False
    ids = _listing(ctx)
    if ids is None:
        return False
    names = sorted({name for i in ids if (name := ctx.catalogue.canonical(i)) is not None})
    model_store.record_listing(db, names, ids)
    ctx.availability.forget()  # this process routes by the new listing from its next job
    state = lifecycle.report(
        ctx.catalogue,
        configured_default=settings.default_model,
        aliases=settings.model_aliases,
        availability=model_store.availability(db),
        today=db.clock.today(),
    )
    log.info("the provider serves %s", ", ".join(names) or "none of the catalogued models")
    for line in lifecycle.announcements(state):
        log.warning("models: %s", line)
    return True


def _listing(ctx: Context) -> list[str] | None:
    """What the accounts serve together: each account's listing, less the models it is not
    configured for. None when no account could be listed (a failure postpones the next try)."""
    ids: list[str] = []
    listed = failed = False
    for account in ctx.settings.accounts:
        try:
            got = ctx.adapter(account.name).models()
        except ProviderError as exc:
            log.warning("listing the models of account %s failed: %s", account.name, exc)
            failed = True
            continue
        if got is not None:
            listed = True
            ids += [i for i in got if account.serves(ctx.catalogue.canonical(i) or i)]
    if failed and not listed:
        model_store.postpone_refresh(ctx.db, RETRY_LISTING_SECONDS)
    return sorted(set(ids)) if listed else None


_listing_thread: threading.Thread | None = None
_listing_lock = threading.Lock()


def refresh_in_background(ctx: Context, *, force: bool = False) -> None:
    """`refresh` in a thread of its own, so a slow provider never holds up the dispatcher's
    admission loop that calls this; at most one listing runs per process."""
    global _listing_thread

    def run() -> None:
        try:
            refresh(ctx, force=force)
        except StorageError as exc:
            log.warning("recording the provider's models failed: %s", exc)

    with _listing_lock:
        if _listing_thread is not None and _listing_thread.is_alive():
            return
        _listing_thread = threading.Thread(target=run, name="editq-models", daemon=True)
        _listing_thread.start()


def wait_for_listing(seconds: float) -> None:
    """Wait up to `seconds` for the listing under way (a worker's first, before it admits jobs,
    so it routes them by what the provider serves now)."""
    with _listing_lock:
        thread = _listing_thread
    if thread is not None:
        thread.join(seconds)


def options_of(job: Job) -> EditOptions:
    """The options a job was submitted with, as far as planning needs them."""
    o = job.options
    return EditOptions(
        prompt=job.prompt,
        n=int(o.get("n") or 1),
        size=o.get("size"),
        aspect_ratio=o.get("aspect_ratio"),
        output_size=o.get("output_size"),
        strength=o.get("strength"),
        quality=o.get("quality"),
        output_format=o.get("output_format"),
        output_compression=o.get("output_compression"),
        background=o.get("background"),
        input_fidelity=o.get("input_fidelity"),
    )


def _requote(ctx: Context, job: Job, plan: EditPlan, estimate: cost.Estimate) -> Quote | None:
    """A job on a credit plan, priced on another model under the plan it was reserved on."""
    terms = Terms.from_json(job.raw.get("credit_terms", ""))
    if terms is None:
        return None
    held_under = credit_store.get_plan(ctx.db, terms.plan)
    if held_under is None:
        raise InvalidRequest("not_in_plan", f"the plan {terms.plan!r} is gone", "model")
    return quote(held_under, plan.model, plan.size, plan.quality, plan.n, estimate.micros)


def _does_not_fit(unavailable: str, successor: str, period: str) -> dict[str, str]:
    """The error of a job whose estimate on `successor` does not fit a budget or the balance."""
    if period == "credits":
        return {
            "code": "insufficient_credits",
            "message": f"{unavailable} is unavailable and the job's credits on {successor} do not fit "
            "the tenant's balance",
        }
    return {
        "code": "budget_exceeded",
        "message": f"{unavailable} is unavailable and the job's estimate on {successor} does not fit "
        f"the {period} budget",
    }


def reroute(ctx: Context, job: Job, availability: Availability) -> Job | dict[str, str]:
    """Move a job whose default model is unavailable to the successor; the moved job, or the
    error to fail it with."""
    unavailable = {
        "code": "model_unavailable",
        "message": f"{job.model} is not served by the provider account",
    }
    if job.model_explicit:
        return unavailable
    choice = lifecycle.successor_choice(
        ctx.catalogue, job.model, availability=availability, today=ctx.db.clock.today()
    )
    if choice is None:
        return unavailable | {"message": f"{job.model} is unavailable and has no live, served successor"}
    model = choice.resolution.model
    try:
        plan = plan_edit(
            options_of(job),
            model,
            choice.resolution.api_name,
            image_count=len(job.sources),
            first_image=(int(job.sources[0]["width"]), int(job.sources[0]["height"])),
        )
        estimate = cost.estimate(
            model,
            plan,
            [(int(s["width"]), int(s["height"])) for s in job.sources],
            (int(job.mask["width"]), int(job.mask["height"])) if job.mask else None,
        )
        credits = _requote(ctx, job, plan, estimate)
    except InvalidRequest as exc:
        return unavailable | {
            "message": f"{job.model} is unavailable and {model.name} cannot run this job: {exc}"
        }
    moved = jobs.reprice(
        ctx.db,
        job,
        model=model.name,
        plan=plan.to_dict(),
        estimate=estimate.to_dict(),
        amount=estimate.micros,
        note=choice.note or "",
        credits=credits,
    )
    if isinstance(moved, jobs.OverBudget):
        return _does_not_fit(job.model, model.name, moved.period)
    if isinstance(moved, jobs.Refused):
        return {"code": "stale", "message": "the job changed while it was being moved"}
    log.warning("job %s moved from %s to %s", job.id, job.model, model.name)
    return moved
