"""The job runner against a scripted provider (a fake at the provider seam), with real Redis,
S3 and API: how each provider answer moves the job, the money and the limiter."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from editq.job import Job
from editq.ratelimits import RateHeaders
from editq.storage import jobs, limiter, money
from editq.worker import context, dispatcher, edit, housekeeping
from editq.worker.provider import failures
from editq.worker.provider.openai import EditCall, EditResult
from tests import images
from tests.support.stack import Services, Universe, universe

USAGE = {
    "input_tokens": 100,
    "output_tokens": 272,
    "total_tokens": 372,
    "input_tokens_details": {"text_tokens": 20, "image_tokens": 80},
}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1024, 1024), "navy").save(out, format="PNG")
    return out.getvalue()


class Scripted:
    """Answers calls from a script: an exception to raise, or 'ok'."""

    name = "scripted"

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.calls: list[EditCall] = []

    def models(self) -> list[str] | None:
        return None

    def edit(self, call: EditCall) -> EditResult:
        self.calls.append(call)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return EditResult([_png()], USAGE, {}, RateHeaders(), "req_1")


@pytest.fixture
def runner(services: Services) -> Iterator[tuple[Universe, context.Context]]:
    u = universe(
        services,
        EDITQ_PROVIDER_MAX_ATTEMPTS="2",
        EDITQ_PROVIDER_MAX_RATE_LIMITED="10",
        EDITQ_RETRY_BASE_SECONDS="0.01",
        EDITQ_RETRY_MAX_SECONDS="0.05",
    )
    u.start_api()
    ctx = context.build(u.settings, 4)
    limiter.heartbeat(ctx.db, "runner", 4, 600)
    try:
        yield u, ctx
    finally:
        ctx.close()
        u.stop()


def _drive(
    u: Universe, ctx: context.Context, tenant: str, job_id: str, timeout: float = 20, *, ahead: bool = False
) -> dict[str, str]:
    """What a dispatcher and a worker do, in-process, until the job ends (`ahead`: the worker
    loads the sources admission named before its claim, as the edit threads do)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dispatcher.drain_schedule(ctx.db, lambda *a: None, lambda m: None, 1000)
        step = limiter.admit(ctx.db)
        if step.outcome == "admitted":
            told = edit.Ahead.parse(step.model, step.sources, step.mask) if ahead else None
            assert told is not None or not ahead
            edit.run(ctx, step.tenant, step.job_id, step.token, told)
        record = u.redis.hgetall(f"{u.prefix}:job:{tenant}:{job_id}")
        if record["status"] not in ("queued", "running"):
            return dict(record)
        time.sleep(0.05)
    raise AssertionError("the job did not end")


def _submit(u: Universe, key: str) -> str:
    with u.client(key) as client:
        response = client.post(
            "/v1/edits",
            data={"prompt": "night", "size": "1024x1024", "quality": "low"},
            files=[("image", ("a.png", images.scene(100, 100), "image/png"))],
        )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _claimed(u: Universe, ctx: context.Context, *, calling: bool) -> tuple[str, str, limiter.Admission, Job]:
    """A new job, admitted and claimed by a worker ("doomed") that will be lost."""
    tenant, key = u.tenant()
    job_id = _submit(u, key)
    step = limiter.admit(ctx.db)
    assert step.job_id == job_id
    job = jobs.start(ctx.db, tenant, job_id, step.token, "doomed", calling=calling)
    assert isinstance(job, Job)
    return tenant, job_id, step, job


def test_429s_do_not_use_up_the_retry_budget(runner: tuple[Universe, context.Context]) -> None:
    u, ctx = runner
    tenant, key = u.tenant()
    limited = failures.RateLimited("slow down", status=429, retry_after=0.01)
    ctx.provider = Scripted(
        [limited, limited, limited, failures.ProviderServerError("boom", status=502), "ok"]
    )
    record = _drive(u, ctx, tenant, _submit(u, key))
    assert record["status"] == "succeeded"
    assert (int(record["attempts"]), int(record["rate_limited"]), int(record["retries"])) == (5, 3, 1)
    kinds = [e["kind"] for e in money.ledger(ctx.db, tenant)]
    assert kinds == ["reserved", "settled"]


def test_retries_stop_at_the_limit(runner: tuple[Universe, context.Context]) -> None:
    u, ctx = runner
    tenant, key = u.tenant()
    ctx.provider = Scripted([failures.ProviderTimeout("slow"), failures.ProviderUnreachable("refused")])
    record = _drive(u, ctx, tenant, _submit(u, key))
    assert record["status"] == "failed"
    assert '"provider_unreachable"' in record["error"]
    assert int(record["reserved"]) > 0
    assert [e["kind"] for e in money.ledger(ctx.db, tenant)] == ["reserved", "released"]


def test_each_permanent_answer_fails_the_job_with_its_code(runner: tuple[Universe, context.Context]) -> None:
    u, ctx = runner
    for exc, code in (
        (
            failures.ModerationBlocked("no", status=400, provider_code="moderation_blocked"),
            "moderation_blocked",
        ),
        (failures.ProviderRejected("bad size", status=400), "provider_rejected"),
        (failures.BadResponse("no images"), "provider_bad_response"),
    ):
        tenant, key = u.tenant()
        ctx.provider = Scripted([exc])
        record = _drive(u, ctx, tenant, _submit(u, key))
        assert record["status"] == "failed"
        assert f'"{code}"' in record["error"]
        assert record["attempts"] == "1"


def test_quota_and_auth_pause_the_account(runner: tuple[Universe, context.Context]) -> None:
    u, ctx = runner
    for exc, reason in (
        (failures.QuotaExceeded("quota", status=429), "insufficient_quota"),
        (failures.AuthenticationFailed("key", status=401), "provider_auth_failed"),
    ):
        tenant, key = u.tenant()
        ctx.provider = Scripted([exc])
        record = _drive(u, ctx, tenant, _submit(u, key))
        assert record["status"] == "failed"
        state = limiter.state(ctx.db)
        assert state["paused"]
        assert state["pause_reason"] == reason
        assert limiter.admit(ctx.db).outcome == "paused"
        limiter.resume(ctx.db)


def test_a_canceled_running_job_is_charged_for_its_call(runner: tuple[Universe, context.Context]) -> None:
    u, ctx = runner
    tenant, key = u.tenant()
    job_id = _submit(u, key)

    class CancelsMidCall(Scripted):
        def edit(self, call: EditCall) -> EditResult:
            jobs.cancel(ctx.db, tenant, job_id)
            return super().edit(call)

    ctx.provider = CancelsMidCall(["ok"])
    record = _drive(u, ctx, tenant, job_id)
    assert record["status"] == "canceled"
    assert not record.get("outputs")
    assert u.db.objects.list_keys(f"t/{tenant}/out/") == []
    settled = [e for e in money.ledger(ctx.db, tenant) if e["kind"] == "settled"]
    assert len(settled) == 1
    assert settled[0]["amount_micros"] == 20 * 2 + 80 * 2.5 + 272 * 8
    assert settled[0]["note"] == "canceled while running"


def test_sources_loaded_before_the_claim_run_the_same_job(runner: tuple[Universe, context.Context]) -> None:
    u, ctx = runner
    tenant, key = u.tenant()
    limited = failures.RateLimited("slow down", status=429, retry_after=0.01)
    ctx.provider = Scripted([limited, "ok"])
    record = _drive(u, ctx, tenant, _submit(u, key), ahead=True)
    assert record["status"] == "succeeded"
    assert (record["attempts"], record["rate_limited"], record["runs"]) == ("2", "1", "2")
    assert "calling" not in record
    assert [len(call.images) for call in ctx.provider.calls] == [1, 1]
    assert [e["kind"] for e in money.ledger(ctx.db, tenant)] == ["reserved", "settled"]


@pytest.mark.parametrize("wanted", [True, False])
def test_a_succeeded_run_admits_the_next_job_as_it_settles(
    runner: tuple[Universe, context.Context], wanted: bool
) -> None:
    u, ctx = runner
    tenant, key = u.tenant()
    first, second = _submit(u, key), _submit(u, key)
    step = limiter.admit(ctx.db)
    assert step.job_id == first
    ctx.provider = Scripted(["ok"])
    then = edit.Then(lambda: wanted)
    outcome = edit.run(
        ctx, tenant, first, step.token, edit.Ahead.parse(step.model, step.sources, step.mask), then
    )
    assert outcome is edit.Outcome.SUCCEEDED
    assert u.redis.hget(f"{u.prefix}:job:{tenant}:{first}", "status") == "succeeded"
    if not wanted:
        assert then.admission is None
        assert limiter.admit(ctx.db).job_id == second
        return
    assert then.admission is not None
    assert then.admission.outcome == "admitted"
    assert then.admission.job_id == second
    record = u.redis.hgetall(f"{u.prefix}:job:{tenant}:{second}")
    assert (record["status"], record["token"]) == ("queued", then.admission.token)
    assert limiter.admit(ctx.db).outcome == "empty"


def test_sources_that_fail_to_load_ahead_fail_the_job_without_a_second_read(
    runner: tuple[Universe, context.Context],
) -> None:
    u, ctx = runner
    tenant, key = u.tenant()
    job_id = _submit(u, key)
    assert ctx.db.objects.delete_prefix(f"t/{tenant}/src/") == 1

    class Counted:
        """The store, counting reads of the job's sources."""

        def __init__(self, inner: Any) -> None:
            self.inner, self.reads = inner, 0

        def get(self, object_key: str) -> bytes:
            self.reads += 1
            return bytes(self.inner.get(object_key))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    counted = Counted(ctx.db.objects)
    ctx.db.objects = counted  # type: ignore[assignment]  # a counting stand-in for the store
    ctx.provider = Scripted([])
    try:
        record = _drive(u, ctx, tenant, job_id, ahead=True)
    finally:
        ctx.db.objects = counted.inner
    assert record["status"] == "failed"
    assert '"source_missing"' in record["error"]
    assert counted.reads == 1
    assert "calling" not in record
    assert ctx.provider.calls == []
    assert [e["kind"] for e in money.ledger(ctx.db, tenant)] == ["reserved", "released"]


def test_a_claim_with_its_sources_loaded_notes_the_call_sent(
    runner: tuple[Universe, context.Context],
) -> None:
    """The claim stands for the sent mark: a run lost after it leaves its call in the ledger."""
    u, ctx = runner
    tenant, job_id, step, _ = _claimed(u, ctx, calling=True)
    assert edit.Ahead.parse(step.model, step.sources, step.mask) is not None
    assert u.redis.hget(f"{u.prefix}:job:{tenant}:{job_id}", "calling") == "1"
    u.redis.zadd(f"{u.prefix}:inflight", {f"{tenant}/{job_id}": 0})  # the worker died: lease lapsed
    assert housekeeping.reap_leases(ctx.db) == {"requeued": 1}
    assert [e["kind"] for e in money.ledger(ctx.db, tenant)] == ["reserved", "unknown_charge"]


@pytest.mark.parametrize(
    ("model", "sources", "mask"),
    [
        ("", '[{"sha256": "ab"}]', ""),  # no model named
        ("gpt-image-1-mini", "", ""),  # no sources
        ("gpt-image-1-mini", "[]", ""),
        ("gpt-image-1-mini", "{not json", ""),
        ("gpt-image-1-mini", '{"sha256": "ab"}', ""),  # not a list
        ("gpt-image-1-mini", '[{"sha256": "ab"}]', "{broken"),
    ],
)
def test_what_admission_says_too_little_of_is_read_at_the_claim(model: str, sources: str, mask: str) -> None:
    assert edit.Ahead.parse(model, sources, mask) is None


@pytest.mark.parametrize("answered", [True, False])
def test_a_lost_run_leaves_its_call_in_the_ledger(
    runner: tuple[Universe, context.Context], answered: bool
) -> None:
    u, ctx = runner
    tenant, job_id, _, job = _claimed(u, ctx, calling=False)
    assert jobs.mark_call(ctx.db, job, jobs.CallPhase.SENT)
    if answered:
        assert jobs.mark_call(ctx.db, job, jobs.CallPhase.ANSWERED, USAGE, 2256)
    u.redis.zadd(f"{u.prefix}:inflight", {f"{tenant}/{job_id}": 0})  # the worker died: lease lapsed
    assert housekeeping.reap_leases(ctx.db) == {"requeued": 1}
    lost = [e for e in money.ledger(ctx.db, tenant) if e["kind"] not in ("reserved",)]
    assert [e["kind"] for e in lost] == ["lost_call" if answered else "unknown_charge"]
    assert lost[0]["amount_micros"] == (2256 if answered else 0)
    assert lost[0]["note"].startswith("attempt 1:")
    spent = int(u.redis.hget(f"{u.prefix}:budget:{tenant}:total", "spent") or 0)
    assert spent == (2256 if answered else 0)
    assert not u.redis.hget(f"{u.prefix}:job:{tenant}:{job_id}", "calling")
    ctx.provider = Scripted(["ok"])
    record = _drive(u, ctx, tenant, job_id)
    assert record["status"] == "succeeded"
    kinds = [e["kind"] for e in money.ledger(ctx.db, tenant)]
    assert kinds.count("settled") == 1
