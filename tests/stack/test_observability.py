"""Metrics and logs of a real run: jobs answered 429 by the simulator, one failing for good,
one webhook delivered and one failing. One scrape shows every metric moved by exactly what
happened; the API's and workers' logs are JSON lines that follow each job and hold no secret."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests import images
from tests.support.receiver import Receiver
from tests.support.stack import PrivateSim, Universe

IMAGE = ("a.png", images.scene(320, 240), "image/png")
MODEL = "gpt-image-1-mini"
TOKEN = "metrics-token-for-the-observability-test"
ADMIN = "admin-key-for-the-observability-test"
BUDGET_MICROS = 5_000_000

#: Series the check sums over every label.
UNLABELLED = (
    "editq_provider_call_seconds_count",
    "editq_job_queue_seconds_count",
    "editq_provider_images_total",
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(u: Universe, token: str | None = TOKEN) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{u.api_url}/metrics", headers=headers, timeout=10)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def _submit(client: httpx.Client, **data: str) -> str:
    response = client.post(
        "/v1/edits", data={"prompt": "rain", "quality": "low", **data}, files=[("image", IMAGE)]
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _expected(
    sim: dict[str, Any], delivered: int, failed_attempts: int, spent: int
) -> dict[tuple[str, str], float]:
    calls = sim["by_status"]
    return {
        ("editq_jobs_finished_total", "succeeded"): 3,
        ("editq_jobs_finished_total", "failed"): 1,
        ("editq_provider_calls_total", "ok"): calls.get("200", 0),
        ("editq_provider_calls_total", "rate_limited"): calls.get("429", 0),
        ("editq_provider_calls_total", "moderation"): calls.get("400", 0),
        ("editq_provider_call_seconds_count", ""): sim["requests"],
        ("editq_provider_images_total", ""): sim["images"],
        ("editq_job_queue_seconds_count", ""): 4,
        ("editq_job_duration_seconds_count", "succeeded"): 3,
        ("editq_job_duration_seconds_count", "failed"): 1,
        ("editq_retries_total", "rate_limited"): calls.get("429", 0),
        ("editq_webhook_deliveries_total", "delivered"): delivered,
        ("editq_webhook_deliveries_total", "http_error"): failed_attempts,
        ("editq_cost_usd_total", MODEL): spent / 1_000_000,
    }


def _observed(samples: Samples) -> dict[tuple[str, str], float]:
    label = {
        "editq_jobs_finished_total": "status",
        "editq_provider_calls_total": "outcome",
        "editq_job_duration_seconds_count": "status",
        "editq_retries_total": "reason",
        "editq_webhook_deliveries_total": "outcome",
        "editq_cost_usd_total": "model",
    }
    found: dict[tuple[str, str], float] = {}
    for (name, labels), v in samples.items():
        key = (name, dict(labels).get(label[name], "")) if name in label else (name, "")
        if name in label or name in UNLABELLED:
            found[key] = found.get(key, 0) + v
    return found


def _log_lines(u: Universe) -> list[dict[str, Any]]:
    paths = sorted(u.services.logs.glob(f"{u.prefix}-*.log"))
    assert {p.name.rsplit("-", 1)[-1] for p in paths} >= {"api.log", "beat.log"}
    lines = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    raise AssertionError(f"{path.name}:{number} is not JSON: {line!r}") from None
    return lines


def _secrets(u: Universe, key: str, jobs: list[dict[str, Any]], client: httpx.Client) -> list[str]:
    found = [
        key,
        TOKEN,
        ADMIN,
        u.env["OPENAI_API_KEY"],
        u.env["AWS_SECRET_ACCESS_KEY"],
        u.env["EDITQ_SECRETS_KEY"],
    ]
    found += [s["secret"] for s in client.get("/v1/webhooks/secret").json()["secrets"]]
    for job in jobs:
        for output in job["outputs"]:
            found += re.findall(r"X-Amz-Signature=([0-9a-f]+)", output["url"])
    assert any(s.startswith("whsec_") for s in found)
    assert len(found) > 7  # presigned outputs were signed
    return found


def test_one_scrape_shows_what_happened_and_logs_follow_each_job(
    make_stack: Callable[..., Universe], private_sim: PrivateSim
) -> None:
    u = make_stack(
        workers=1,
        OPENAI_BASE_URL=private_sim.url,
        EDITQ_PROVIDER_IPM="600",
        EDITQ_PROVIDER_RPM="600",
        EDITQ_METRICS_TOKEN=TOKEN,
        EDITQ_ADMIN_API_KEY=ADMIN,
        EDITQ_LOG_LEVEL="INFO",
        EDITQ_LOG_FORMAT="json",
        EDITQ_OUTPUT_URLS="presigned",
    )
    good, bad = Receiver().start(), Receiver(answer=lambda n: 500).start()
    tenant, key = u.tenant(budgets={"total": BUDGET_MICROS})
    missing = httpx.get(f"{u.api_url}/metrics", timeout=10)
    wrong = httpx.get(f"{u.api_url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "missing_metrics_token")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_metrics_token")
    admin = httpx.get(
        f"{u.api_url}/v1/admin/tenants", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10
    )
    assert admin.status_code == 200, admin.text
    before = scrape(u)
    assert value(before, "editq_jobs_finished_total") == 0
    try:
        with u.client(key) as client:
            # the simulator's image bucket starts empty: the first calls are answered 429, and
            # once one was, the simulator lets everything through
            private_sim(ipm=30, start_full=False, rate_headers="none", latency_min=0.05, latency_max=0.1)
            ids = [
                _submit(client, webhook_url=good.url),
                _submit(client, webhook_url=bad.url),
                _submit(client),
                _submit(client, prompt="[moderation] something violent"),
            ]
            deadline = time.monotonic() + 30
            while not private_sim.stats()["by_status"].get("429"):
                assert time.monotonic() < deadline, private_sim.stats()
                time.sleep(0.05)
            private_sim(ipm=100000, start_full=True)
            jobs = [u.wait_job(client, job_id, timeout=90) for job_id in ids]
            assert [j["status"] for j in jobs] == ["succeeded", "succeeded", "succeeded", "failed"]
            assert jobs[3]["error"]["code"] == "moderation_blocked"
            deadline = time.monotonic() + 60
            while len(bad.received) < 5 or not good.received:
                assert time.monotonic() < deadline, (len(good.received), len(bad.received))
                time.sleep(0.1)
            ledger = client.get("/v1/usage/ledger").json()["data"]
            spent = sum(e["amount_micros"] for e in ledger if e["kind"] in ("settled", "lost_call"))
            secrets = _secrets(u, key, jobs, client)
        sim = private_sim.stats()
        assert sim["by_status"].get("429", 0) >= 1, sim
        expected = _expected(sim, 1, len(bad.received), spent)
        deadline = time.monotonic() + 30
        while True:
            samples = scrape(u)
            observed = {k: v for k, v in _observed(samples).items() if k in expected or v}
            if (
                all(abs(observed.get(k, 0) - v) < 1e-9 for k, v in expected.items())
                or time.monotonic() > deadline
            ):
                break
            time.sleep(0.3)
    finally:
        good.stop()
        bad.stop()
    assert {k: observed.get(k, 0) for k in expected} == expected
    assert set(observed) <= set(expected), set(observed) - set(expected)
    assert value(samples, "editq_job_queue_seconds_count", priority="interactive") == 4
    assert value(samples, "editq_provider_call_seconds_count", model=MODEL) == sim["requests"]
    assert value(samples, "editq_workers_live") == 1
    assert value(samples, "editq_budget_used_ratio", tenant=tenant, period="total") == spent / BUDGET_MICROS
    assert value(samples, "editq_pending_jobs", tenant=tenant) == 0
    _check_logs(u, ids, secrets)


def _check_logs(u: Universe, ids: list[str], secrets: list[str]) -> None:
    lines = _log_lines(u)
    for line in lines:
        assert {"timestamp", "level", "event"} <= set(line), line
    events = Counter((line.get("job_id"), line["event"]) for line in lines)
    for job_id in ids:
        for name in ("job.submitted", "job.admitted", "job.started", "provider.call"):
            assert events[(job_id, name)] >= 1, (job_id, name)
    assert [events[(i, "job.succeeded")] for i in ids] == [1, 1, 1, 0]
    assert events[(ids[3], "job.failed")] == 1
    assert events[(ids[0], "webhook.attempt")] == 1
    assert events[(ids[1], "webhook.attempt")] == 5
    call = next(line for line in lines if line["event"] == "provider.call" and line["job_id"] == ids[0])
    assert {"tenant", "model", "attempt", "outcome", "status", "duration_ms"} <= set(call)
    submitted = next(line for line in lines if line["event"] == "job.submitted" and line["job_id"] == ids[0])
    assert submitted["request_id"].startswith("req_")
    assert any(line["event"] == "provider.call" and line["outcome"] == "rate_limited" for line in lines)
    text = "\n".join(path.read_text() for path in u.services.logs.glob(f"{u.prefix}-*.log"))
    leaked = [s[:12] for s in secrets if s in text]
    assert leaked == []


def test_metrics_need_no_token_when_none_is_set(stack: Universe) -> None:
    response = httpx.get(f"{stack.api_url}/metrics", timeout=10)
    assert response.status_code == 200
    assert "# TYPE editq_jobs_finished_total counter" in response.text


def test_request_ids_are_kept_when_plain_and_replaced_when_not(stack: Universe) -> None:
    def answer(given: str | bytes | None) -> str:
        raw = given.encode() if isinstance(given, str) else given
        headers = {b"X-Request-ID": raw} if raw is not None else {}
        return httpx.get(f"{stack.api_url}/healthz", headers=headers, timeout=10).headers["x-request-id"]

    assert answer("client-req.42:a_b") == "client-req.42:a_b"
    for hostile in ("", "x" * 65, '"}{"level": "error', "a b", "ünïcode".encode()):
        made = answer(hostile)
        assert made.startswith("req_"), hostile
        assert len(made) == 20
    assert answer(None) != answer(None)
