"""One log setup for every process: JSON lines with context, console lines, demoted noise, and
no secret in any line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from editq import logs
from editq.settings import Settings


@pytest.fixture(autouse=True)
def _restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_json_lines_carry_the_bound_context_and_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("INFO", "json")
    log = logging.getLogger("editq.worker")
    with logs.bound(job_id="edit_1", tenant="acme"):
        logs.event(log, "provider.call", outcome="ok", status=200, duration_ms=12, code=None)
    log.info("plain %s", "text")
    first, second = _lines(capsys)
    assert first["event"] == "provider.call"
    assert first["level"] == "info"
    assert str(first["timestamp"]).endswith("Z")
    assert {k: first[k] for k in ("job_id", "tenant", "outcome", "status", "duration_ms")} == {
        "job_id": "edit_1",
        "tenant": "acme",
        "outcome": "ok",
        "status": 200,
        "duration_ms": 12,
    }
    assert "code" not in first
    assert second["event"] == "plain text"
    assert "job_id" not in second


def test_exceptions_are_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("INFO", "json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("editq").exception("failed")
    (line,) = _lines(capsys)
    assert "ValueError: boom" in str(line["exception"])


def test_housekeeping_noise_is_shown_at_debug_only(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("INFO", "json")
    logging.getLogger("flower.inspector").warning("Inspect method stats failed")
    logging.getLogger("celery.beat").info("Scheduler: Sending due task housekeeping")
    logging.getLogger("celery.app.trace").info("Task editq.housekeeping[1] succeeded")
    logging.getLogger("httpx").info('HTTP Request: POST http://sim/v1/images/edits "HTTP/1.1 200 OK"')
    logging.getLogger("uvicorn.error").info("Started", extra={"color_message": "\x1b[1mStarted"})
    logging.getLogger("celery.app.trace").error("Task editq.edit[2] raised")
    lines = _lines(capsys)
    assert [line["event"] for line in lines] == ["Started", "Task editq.edit[2] raised"]
    assert "color_message" not in lines[0]
    logs.setup("DEBUG", "json")
    logging.getLogger("flower.inspector").warning("Inspect method stats failed")
    (line,) = _lines(capsys)
    assert line["level"] == "debug"


def test_console_format_for_a_person(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("INFO", "console")
    with logs.bound(job_id="edit_1"):
        logging.getLogger("editq").info("job.started")
    text = capsys.readouterr().err
    assert "INFO" in text
    assert "job.started  job_id=edit_1" in text


def test_json_is_the_default_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("INFO")
    logging.getLogger("editq").info("hello")
    assert _lines(capsys)[0]["event"] == "hello"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET https://s3/o.png?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=0a1b2c3d4e5f", "0a1b2c3d4e5f"),
        ("https://b.s3.amazonaws.com/o?AWSAccessKeyId=A&Signature=abc%2Bdef&Expires=1", "abc%2Bdef"),
        ("headers={'Authorization': 'Bearer eq_1a2b3c4d_secretpart'}", "secretpart"),
        ("Authorization: Basic YWRtaW46cGFzc3dvcmQ=", "YWRtaW46cGFzc3dvcmQ="),
        ('{"api-key": "azure-key-123456"}', "azure-key-123456"),
        ("signing with whsec_c2VjcmV0LXNpZ25pbmcta2V5", "c2VjcmV0LXNpZ25pbmcta2V5"),
        ("OPENAI_API_KEY=sk-proj-abcdef123456", "abcdef123456"),
        ("the key eq_dev_Zm9vYmFyYmF6cXV4 was refused", "Zm9vYmFyYmF6cXV4"),
    ],
)
def test_secret_shapes_are_redacted(text: str, secret: str) -> None:
    assert secret not in logs.Redactor()(text)


def test_the_settings_secrets_are_redacted_wherever_they_appear(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_env(
        {
            "EDITQ_METRICS_TOKEN": "metrics-token-42",
            "EDITQ_FLOWER_BASIC_AUTH": "admin:flower-pass-7",
            "EDITQ_BOOTSTRAP_API_KEY": "custom-bootstrap-key",
            "AWS_SECRET_ACCESS_KEY": "aws-secret-99",
        }
    )
    logs.setup("INFO", "json", logs.secret_values(settings))
    logging.getLogger("editq").info(
        "leak %s %s %s",
        "metrics-token-42",
        "flower-pass-7",
        "custom-bootstrap-key",
        extra={"aws": "aws-secret-99"},
    )
    text = capsys.readouterr().err
    for secret in ("metrics-token-42", "flower-pass-7", "custom-bootstrap-key", "aws-secret-99"):
        assert secret not in text
    assert text.count("[redacted]") == 4
