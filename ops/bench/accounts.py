"""Benchmarks 6 and 7: pooled provider accounts, and failover when one runs out of quota.

Each returns (title, setup, rows, verdicts, notes) for the report (`__main__.Result`).
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import httpx
from PIL import Image, ImageDraw

from editq.ops.bench.harness import Editq, Services, sim_stats

#: Each simulated account's limit, images (and requests) per minute.
PER_ACCOUNT = 300
NAMES = ("p1", "p2", "p3")
WORKERS = 2
CONCURRENCY = 24
LATENCY = "1-2"

Report = tuple[str, str, list[tuple[str, str, str, str]], list[str], list[str]]


def _image() -> bytes:
    image = Image.new("RGB", (512, 384), (110, 160, 215))
    ImageDraw.Draw(image).ellipse((128, 96, 384, 288), fill=(235, 190, 70))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _pool(urls: dict[str, str]) -> dict[str, str]:
    spec = [
        {
            "name": name,
            "kind": "openai",
            "base_url": f"{url}/v1",
            "api_key_env": "BENCH_SIM_KEY",
            "models": ["gpt-image-1-mini"],
            "ipm": PER_ACCOUNT,
            "rpm": PER_ACCOUNT,
            "max_inflight": 32,
        }
        for name, url in urls.items()
    ]
    return {"BENCH_SIM_KEY": "sk-bench", "EDITQ_PROVIDER_ACCOUNTS": json.dumps(spec)}


def _rate(starts: list[int]) -> float:
    """Call starts per minute: (n - 1) / (last - first)."""
    starts = sorted(starts)
    return 0.0 if len(starts) < 2 else (len(starts) - 1) / max(1, starts[-1] - starts[0]) * 60_000


def _run(
    services: Services,
    names: tuple[str, ...],
    jobs: int,
    *,
    fail_at: float | None = None,
) -> tuple[list[dict[str, str]], dict[str, dict[str, Any]], float | None]:
    """A backlog of `jobs` over the simulated accounts `names` (one simulator process each, as
    separate providers do not share a CPU; each account at `/a/{name}/v1`). With `fail_at`, the
    last account starts answering insufficient_quota once that share of the jobs has started.
    Returns the job records, each account's simulator stats (with timelines) and when it failed."""
    sims = [services.sim("--ipm", str(PER_ACCOUNT), "--latency", LATENCY) for _ in names]
    urls = {name: f"{url}/a/{name}" for name, (_, url) in zip(names, sims, strict=True)}
    failed_at = None
    try:
        editq = Editq.create(services, sims[0][1], EDITQ_WORKER_CONCURRENCY=str(CONCURRENCY), **_pool(urls))
        try:
            key = editq.tenant("acme")
            with editq.client(key) as client:
                ids = editq.submit_backlog(client, jobs, _image())
            for url in urls.values():  # fresh buckets and counts for the run
                httpx.post(f"{url}/_sim/reset", timeout=10).raise_for_status()
            editq.start_workers(WORKERS, CONCURRENCY)
            if fail_at is not None:
                target = int(jobs * fail_at)
                while sum(1 for r in editq.records("acme", ids) if r.get("started_at")) < target:
                    time.sleep(0.2)
                httpx.post(
                    f"{urls[names[-1]]}/_sim/config", json={"quota_exhausted": True}, timeout=10
                ).raise_for_status()
                failed_at = time.time()
            limit = PER_ACCOUNT * (len(names) - (1 if fail_at is not None else 0))
            records = editq.wait("acme", ids, timeout=jobs / limit * 60 * 2 + 120)
        finally:
            editq.stop()
        stats = {name: sim_stats(url, timeline=True) for name, url in urls.items()}
    finally:
        for sim, _ in sims:
            sim.stop()
    return records, stats, failed_at


def _limited(stats: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """429 rate_limit answers (not quota refusals: those are counted apart) and all calls."""
    calls = sum(int(s["requests"]) for s in stats.values())
    limited = sum(int(s["by_status"].get("429", 0)) for s in stats.values())
    return limited, calls


def pooled(services: Services, jobs: int) -> Report:
    setup = (
        f"three simulated accounts (`/a/p1..p3/v1`, one simulator process each), each limited to {PER_ACCOUNT} images/min "
        f"(token bucket, starts full), latency {LATENCY} s; editq told each account's true limit; {jobs}-job "
        f"backlog; {WORKERS} worker processes x {CONCURRENCY} threads. Baseline: one of those accounts alone "
        f"with a third of the jobs, same run."
    )
    records, stats, _ = _run(services, NAMES, jobs)
    ok = [r for r in records if r.get("status") == "succeeded"]
    total = PER_ACCOUNT * len(NAMES)
    rate = _rate([int(r["started_at"]) for r in ok])
    limited, calls = _limited(stats)
    shares = {n: sum(1 for r in ok if r.get("account") == n) / max(1, len(ok)) for n in NAMES}
    worst = max(abs(share - 1 / len(NAMES)) * len(NAMES) for share in shares.values())

    one_records, one_stats, _ = _run(services, NAMES[:1], jobs // len(NAMES))
    one_ok = [r for r in one_records if r.get("status") == "succeeded"]
    one_rate = _rate([int(r["started_at"]) for r in one_ok])
    one_limited, one_calls = _limited(one_stats)
    rows = [
        (
            "throughput / aggregate limit (call starts)",
            f"{rate / total:.3f} ({rate:.0f}/min of {total})",
            f"{one_rate / PER_ACCOUNT:.3f} ({one_rate:.0f}/min of {PER_ACCOUNT}, one account)",
            ">= 0.97",
        ),
        (
            "share of calls answered 429",
            f"{limited / max(1, calls):.2%} ({limited} of {calls})",
            f"{one_limited / max(1, one_calls):.2%} ({one_limited} of {one_calls})",
            "<= 1%",
        ),
        (
            "each account's share of the jobs (limit share 1/3)",
            ", ".join(f"{n} {s:.3f}" for n, s in shares.items()) + f"; worst off by {worst:.1%}",
            "",
            "within 10%",
        ),
        ("jobs finished", f"{len(ok)} of {jobs}", f"{len(one_ok)} of {jobs // len(NAMES)}", ""),
        ("worker slots' ceiling: slots / mean seconds a job holds one", _ceiling(ok), _ceiling(one_ok), ""),
    ]
    met = rate / total >= 0.97 and limited / max(1, calls) <= 0.01 and worst <= 0.10
    notes = [
        "Throughput is (jobs - 1) / (last call start - first call start) over every account. "
        "Each account's limiter admits at its own rate; admission sends each job to the account with the "
        "most room left, so the shares follow the limits."
    ]
    return "6. Pooled accounts", setup, rows, ["met" if met else "MISSED"], notes


def _ceiling(records: list[dict[str, str]]) -> str:
    """The rate the worker slots allow at the mean time a job held one (admission to its end)."""
    held = [int(r["finished_at"]) - int(r["admitted_at"]) for r in records if r.get("finished_at")]
    mean = sum(held) / max(1, len(held)) / 1000
    return f"{WORKERS * CONCURRENCY / max(mean, 0.001) * 60:.0f}/min (a job held a slot {mean:.2f} s)"


def _starts(times: list[float], start: float, end: float) -> float:
    """Admissions per minute between `start` and `end` (one image each)."""
    return sum(1 for t in times if start <= t < end) / max(0.001, end - start) * 60


def failover(services: Services, jobs: int) -> Report:
    setup = (
        f"the pool of benchmark 6 ({jobs}-job backlog); once a third of the jobs started, account p3 starts "
        "answering every call 429 insufficient_quota. Baseline: the other two accounts' rate before the failure, "
        "same run."
    )
    records, stats, failed_at = _run(services, NAMES, jobs, fail_at=1 / 3)
    assert failed_at is not None
    ok = [r for r in records if r.get("status") == "succeeded"]
    failed = [r for r in records if r.get("status") == "failed"]
    rest = NAMES[:2]
    limit = PER_ACCOUNT * len(rest)
    # each job's last admission: a job p3 refused was admitted again, to p1 or p2
    admitted = [int(r["admitted_at"]) / 1000 for r in ok if r.get("account") in rest]
    last = max(admitted)
    before = _starts(admitted, min(admitted) + 5, failed_at)
    first_10 = _starts(admitted, failed_at, failed_at + 10)
    after = _starts(admitted, failed_at + 10, last)
    steps = [_starts(admitted, failed_at + s, failed_at + s + 5) for s in range(0, 30, 5)]
    quota = sum(1 for t, status, _ in stats[NAMES[2]]["timeline"] if status == 429 and t >= failed_at)
    moved = sum(1 for r in ok if r.get("rate_limited") and r.get("account") in rest)
    rows = [
        ("jobs failed", f"{len(failed)} of {jobs} ({len(ok)} succeeded)", "", "0"),
        (
            "p1+p2 admissions / their limit, from 10 s after the failure until the backlog ran out",
            f"{after / limit:.3f} ({after:.0f}/min of {limit})",
            f"{before / limit:.3f} ({before:.0f}/min) before the failure",
            "saturated (>= 0.97) within 10 s",
        ),
        (
            "p1+p2 rate in the first 10 s after the failure, then in 5 s steps",
            f"{first_10 / limit:.3f}; " + ", ".join(f"{s / limit:.2f}" for s in steps),
            "",
            "",
        ),
        (
            "calls p3 refused with insufficient_quota after the failure",
            f"{quota} (jobs moved to p1/p2 after a refusal: {moved})",
            "",
            "",
        ),
    ]
    met = not failed and len(ok) == jobs and after / limit >= 0.97
    notes = [
        "Rates are admissions to p1 and p2 per minute (each job's last admission; one image a job). "
        "The first refusal pauses p3 "
        "(EDITQ_ACCOUNT_PAUSE_SECONDS, 300 s); the calls already in flight to it come back refused and their "
        "jobs go back in line at once for p1 and p2, counted against EDITQ_PROVIDER_MAX_RATE_LIMITED, "
        "not against the attempts."
    ]
    return "7. Failover", setup, rows, ["met" if met else "MISSED"], notes
