"""The Grafana dashboard and the Prometheus alerts: valid, tested with promtool, and naming only
metrics editq exports; Flower's `/metrics` behind the metrics token."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from editq.ops import launcher
from editq.telemetry import DeliveryOutcome, ProviderOutcome
from tests.support.stack import Services, Universe, universe

OPS = Path(__file__).resolve().parents[2] / "ops"
DASHBOARD = OPS / "grafana" / "editq.json"
ALERTS = OPS / "prometheus" / "alerts.yaml"
NAME = re.compile(r"\beditq_[a-z0-9_]+\b")
OUTCOME = re.compile(r'outcome(?:=|!=|=~|!~)"([^"]+)"')


def _dashboard_exprs() -> list[str]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def _alert_exprs() -> dict[str, str]:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    return {rule["alert"]: rule["expr"] for rule in rules}


def _exported(text: str) -> set[str]:
    """Sample names a scrape can show: every family's TYPE line, histograms with their suffixes."""
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


def test_dashboard_and_alerts_name_only_metrics_editq_exports(stack: Universe) -> None:
    scraped = httpx.get(f"{stack.api_url}/metrics", timeout=10).text
    exported = _exported(scraped)
    assert "editq_jobs_finished_total" in exported
    assert "editq_job_queue_seconds_bucket" in exported
    exprs = [*_dashboard_exprs(), *_alert_exprs().values()]
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert used - exported == set()
    outcomes = {o.value for o in ProviderOutcome} | {o.value for o in DeliveryOutcome}
    named = {v for expr in exprs for values in OUTCOME.findall(expr) for v in values.split("|")}
    assert named - outcomes == set()


def test_the_dashboard_covers_what_an_operator_watches() -> None:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    variables = board["templating"]["list"]
    assert [(v["name"], v["type"], v["query"]) for v in variables] == [
        ("datasource", "datasource", "prometheus")
    ]
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels)
    text = "\n".join(_dashboard_exprs())
    for needed in (
        "editq_provider_images_total",
        "editq_limiter_ipm",
        'outcome="rate_limited"',
        "sum by (priority)",
        "histogram_quantile(0.95, sum by (le) (max without(instance, pod) "
        "(rate(editq_job_queue_seconds_bucket",
        "editq_job_duration_seconds_bucket",
        "sum by (model) (max without(instance, pod) (rate(editq_cost_usd_total",
        "editq_webhook_deliveries_total",
    ):
        assert needed in text, needed
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_the_alerts_cover_the_failures_that_need_a_person() -> None:
    assert set(_alert_exprs()) == {
        "EditqProviderPaused",
        "EditqRateLimitedShareHigh",
        "EditqBacklogGrowing",
        "EditqNoLiveWorkers",
        "EditqMetricsAbsent",
        "EditqWebhookFailureRate",
        "EditqBudgetNearLimit",
    }


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool is not installed: `ops/install-system-deps.sh --tests` (make test) installs "
            "Debian's prometheus package when run as root"
        )
    return found


@pytest.mark.parametrize(
    "command", [["check", "rules", "alerts.yaml"], ["test", "rules", "alerts.test.yaml"]]
)
def test_promtool_accepts_and_tests_the_alerts(command: list[str]) -> None:
    result = subprocess.run(
        [_promtool(), *command], cwd=ALERTS.parent, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_flowers_metrics_need_the_token_and_its_logs_are_json(services: Services) -> None:
    u = universe(services, EDITQ_METRICS_TOKEN="flower-metrics-token", EDITQ_LOG_LEVEL="INFO")
    port = launcher.free_port()
    log = services.logs / f"{u.prefix}-flower.log"
    proc = launcher.flower(u.env, port, "admin:flower-password", echo=False, log=log)
    try:
        launcher.wait_for_http(f"http://127.0.0.1:{port}/healthcheck", timeout=60)
        base = f"http://127.0.0.1:{port}/metrics"
        missing, wrong = httpx.get(base, timeout=10), httpx.get(base, headers={"Authorization": "Bearer x"})
        good = httpx.get(base, headers={"Authorization": "Bearer flower-metrics-token"}, timeout=10)
    finally:
        proc.stop()
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "missing_metrics_token")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_metrics_token")
    assert good.status_code == 200
    assert "flower_" in good.text or "# HELP" in good.text
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert {"timestamp", "level", "event"} <= set(json.loads(line)), line
    assert "flower-password" not in log.read_text()
    assert "flower-metrics-token" not in log.read_text()


def test_the_run_banner_prints_the_scrape_set() -> None:
    from editq.settings import Settings
    from editq.telemetry import GAUGES, RECORDED

    text = "\n".join(launcher.metrics_banner(Settings.from_env({"EDITQ_API_PORT": "8123"})))
    assert "http://127.0.0.1:8123/metrics" in text
    assert "max without(instance)" in text
    assert all(family.name in text for family in (*RECORDED, *GAUGES))
    guarded = "\n".join(launcher.metrics_banner(Settings.from_env({"EDITQ_METRICS_TOKEN": "t0ken-value"})))
    assert "Bearer $EDITQ_METRICS_TOKEN" in guarded
    assert "t0ken-value" not in guarded
