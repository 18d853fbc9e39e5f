"""Metric families, their Redis fields and the metrics token check."""

from __future__ import annotations

import pytest

from editq import telemetry
from editq.storage.metrics import Recorder
from editq.storage.records import SUM, MetricField
from editq.telemetry import COST_USD, JOB_QUEUE_SECONDS, PROVIDER_CALLS, bucket_index, metrics_refusal


def test_names_follow_prometheus_conventions() -> None:
    for family in (*telemetry.RECORDED, *telemetry.GAUGES):
        assert family.name.startswith("editq_")
        assert not family.name.endswith("_total")
        if family.kind is telemetry.Kind.HISTOGRAM:
            assert family.name.endswith("_seconds")
            assert list(family.buckets) == sorted(family.buckets)
    assert COST_USD.exposed == ("editq_cost_usd_total",)
    assert "tenant" not in {label for f in telemetry.RECORDED for label in f.labels}


@pytest.mark.parametrize(
    ("field", "parsed"),
    [
        ("editq_provider_calls|gpt-image-1|ok", MetricField(PROVIDER_CALLS, ("gpt-image-1", "ok"))),
        ("editq_job_queue_seconds|batch|3", MetricField(JOB_QUEUE_SECONDS, ("batch",), "3")),
        ("editq_job_queue_seconds|batch|sum", MetricField(JOB_QUEUE_SECONDS, ("batch",), SUM)),
    ],
)
def test_metric_fields_round_trip(field: str, parsed: MetricField) -> None:
    assert MetricField.parse(field) == parsed
    assert parsed.format() == field


@pytest.mark.parametrize(
    "field",
    [
        "",
        "nope|a",
        "editq_provider_calls|only-one",
        "editq_job_queue_seconds|batch",
        "editq_job_queue_seconds|b|99",
    ],
)
def test_malformed_metric_fields_parse_to_none(field: str) -> None:
    assert MetricField.parse(field) is None


def test_label_values_cannot_break_the_field() -> None:
    assert MetricField(PROVIDER_CALLS, ("a|b", "")).format() == "editq_provider_calls|a_b|none"


def test_buckets_and_the_recorder() -> None:
    assert bucket_index(JOB_QUEUE_SECONDS, 0.05) == 0
    assert bucket_index(JOB_QUEUE_SECONDS, 0.1) == 0
    assert bucket_index(JOB_QUEUE_SECONDS, 1e9) == len(JOB_QUEUE_SECONDS.buckets)
    recorder = Recorder()
    recorder.count(PROVIDER_CALLS, "m", "ok")
    recorder.count(PROVIDER_CALLS, "m", "ok", by=2)
    recorder.observe(JOB_QUEUE_SECONDS, 0.3, "interactive")
    deltas = recorder.drain()
    assert deltas == {
        "editq_provider_calls|m|ok": 3,
        "editq_job_queue_seconds|interactive|2": 1,
        "editq_job_queue_seconds|interactive|sum": 0.3,
    }
    assert recorder.drain() == {}
    recorder.restore(deltas)
    recorder.count(PROVIDER_CALLS, "m", "ok")
    assert recorder.drain()["editq_provider_calls|m|ok"] == 4


def test_the_metrics_token() -> None:
    assert metrics_refusal(None, None) is None
    assert metrics_refusal("Bearer anything", None) is None
    assert metrics_refusal("Bearer s3cret", "s3cret") is None
    assert metrics_refusal("bearer  s3cret ", "s3cret") is None
    missing = metrics_refusal(None, "s3cret")
    assert missing is not None
    assert missing[0] == "missing_metrics_token"
    assert metrics_refusal("", "s3cret") == missing
    hostile = (
        "Bearer " + "s" * 10_000,
        "Bearer s3crét",
        "Bearer",
        "Bearer ",
        "Bearer s3cret\x00",
        "\u00a0s3cret",
    )
    for header in ("Bearer wrong", "Basic s3cret", "s3cret", "Bearer s3cret2", *hostile):
        refusal = metrics_refusal(header, "s3cret")
        assert refusal is not None
        assert refusal[0] == "invalid_metrics_token"
