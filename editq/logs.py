"""Logging for every editq process (API, worker, beat, Flower, the launcher): one `setup`.

Records go to stderr as JSON lines (`timestamp`, `level`, `event`, `logger`, then the fields
bound to the current job or request: `job_id`, `tenant`, `request_id`, `model`, `attempt`, ...)
or, on a terminal, as readable console lines (`EDITQ_LOG_FORMAT` decides). Celery's, uvicorn's
and Flower's own records go through the same handler. Every line is scrubbed of secrets: the
values of the secret settings, API keys (`eq_…`), webhook secrets (`whsec_…`), provider keys
(`sk-…`), `Authorization` and `api-key` values and presigned URLs' signatures.
Housekeeping chatter (Celery's per-task lines, beat's ticks, Flower's inspector warnings) is
demoted to DEBUG.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from editq.settings import Settings

_context: ContextVar[dict[str, Any]] = ContextVar("editq_log_context", default={})  # noqa: B039

#: Loggers whose INFO and WARNING records are housekeeping noise: shown at DEBUG only.
DEMOTED = (
    "celery.app.trace",  # "Task editq.housekeeping[…] succeeded in 0.01s": editq logs each job itself
    "celery.worker.strategy",  # "Task … received"
    "celery.beat",  # "Scheduler: Sending due task housekeeping"
    "flower.inspector",  # "Inspect method … failed" whenever a worker is slow to answer
    "flower.command",
    "httpx",  # "HTTP Request: POST …": editq logs each provider call and webhook attempt itself
)
#: Record attributes that are not fields of the event.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's message with terminal colours
}

_REDACTED = "[redacted]"
_SIGNATURE = r"(?i)\b(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature)=[^&\s\"'<>]+"
_HEADER = r"(?i)\b(authorization|api-key|x-api-key)(\"?'?\s*[:=]\s*\"?'?)(?:(bearer|basic)\s+)?[^\s\"',}]+"
#: (a lowercase text that must occur for the pattern to match, pattern, replacement): the cheap
#: substring checks keep lines without anything secret-shaped off the regular expressions.
_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (("signature=", "credential=", "security-token="), re.compile(_SIGNATURE), r"\1=" + _REDACTED),
    (
        ("authorization", "api-key"),
        re.compile(_HEADER),
        lambda m: f"{m[1]}{m[2]}{m[3] + ' ' if m[3] else ''}{_REDACTED}",
    ),
    (("bearer", "basic"), re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=:-]{8,}"), r"\1 " + _REDACTED),
    (("whsec_",), re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), "whsec_" + _REDACTED),
    (("sk-",), re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"), "sk-" + _REDACTED),
    (("eq_",), re.compile(r"\beq_[A-Za-z0-9_-]{6,}"), "eq_" + _REDACTED),
)


class Redactor:
    """Removes secrets from text: known values first, then anything shaped like one."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        found = {s for s in secrets if s and len(s) >= 6}
        self.secrets = sorted(found | set(self.secrets), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, _REDACTED)
        lowered = text.lower()
        for triggers, pattern, replacement in _PATTERNS:
            if any(t in lowered for t in triggers):
                text = pattern.sub(replacement, text)
        return text


REDACT = Redactor()


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Fields added to every record logged inside the block (this thread or task only)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current context until it ends (a request's task, a bound block)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log the event `name` with its fields."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={k: v for k, v in fields.items() if v is not None})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
    return {**_context.get(), **extra}


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
        }
        for key, value in _fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return REDACT(json.dumps(line, default=str, ensure_ascii=False))


class ConsoleFormatter(logging.Formatter):
    """`time LEVEL event key=value ...`, for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        text = f"{_timestamp(record)[11:23]} {record.levelname:<7} {record.getMessage()}"
        if fields:
            text = f"{text}  {fields}"
        if record.exc_info:
            text = f"{text}\n{''.join(traceback.format_exception(*record.exc_info)).rstrip()}"
        return REDACT(text)


class _Demote(logging.Filter):
    """Shows the `DEMOTED` loggers' INFO and WARNING records as DEBUG (so only at DEBUG level)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR and record.name.startswith(DEMOTED):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self.level


_HANDLER_NAME = "editq"


def setup(level: str = "INFO", fmt: str | None = None, secrets: Iterable[str] = ()) -> None:
    """Send every record (editq's, Celery's, uvicorn's, Flower's) to stderr through one handler.
    `fmt`: json or console (None: console on a terminal, else json). Safe to call again."""
    REDACT.add(secrets)
    chosen = fmt or ("console" if sys.stderr.isatty() else "json")
    numeric = logging.getLevelName(level.upper())
    numeric = numeric if isinstance(numeric, int) else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if chosen == "json" else ConsoleFormatter())
    handler.addFilter(_Demote(numeric))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "flower", "tornado"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.captureWarnings(True)


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold (lists and `user:password` pairs taken apart too)."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
            found.extend([text, *text.split(","), text.partition(":")[2]])
    return [s.strip() for s in found if s.strip()]


def configure(settings: Settings) -> None:
    """`setup` from the settings: level, format and the secrets to scrub."""
    setup(settings.log_level, settings.log_format, secret_values(settings))
