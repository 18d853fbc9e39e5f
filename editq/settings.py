"""The one settings object, read from the environment once per process."""

from __future__ import annotations

import base64
import binascii
import contextvars
import functools
import json
import os
import tempfile
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from editq import accounts as accounts_module
from editq import catalogue as catalogue_module
from editq import redis_target
from editq.accounts import DEFAULT_ACCOUNT, Account
from editq.clock import Clock

#: Standard Webhooks retry schedule (seconds after the event): immediately, 5 s, 5 min, 30 min,
#: 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
DEFAULT_WEBHOOK_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)

#: Seconds a draining worker gets after its last provider call ends: outputs to S3, settlement.
DRAIN_MARGIN_SECONDS = 30.0

_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "xxx"}
#: Shortest EDITQ_ADMIN_API_KEY accepted: it opens every tenant's settings.
MIN_ADMIN_KEY_CHARS = 16


#: The environment `Settings.from_env` reads (account keys are looked up in it), else None.
_ENV: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("editq_env", default=None)


def _env(name: str, *aliases: str) -> AliasChoices:
    return AliasChoices(name, *aliases)


class Settings(BaseSettings):
    """Every tunable of editq. Environment variables are named in each field's alias."""

    # hide_input_in_errors: a rejected value (EDITQ_REDIS_URL with its password) is not echoed
    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    # --- API ---------------------------------------------------------------------------------
    api_host: str = Field("127.0.0.1", validation_alias=_env("EDITQ_API_HOST"))
    api_port: int = Field(8000, validation_alias=_env("EDITQ_API_PORT"))
    #: Base URL clients use to reach the API; output URLs served by the API are built on it.
    public_url: str = Field("", validation_alias=_env("EDITQ_PUBLIC_URL"))
    #: `api` serves outputs through `GET /v1/edits/{id}/outputs/{i}` (tenant-checked);
    #: `presigned` hands out presigned S3 URLs.
    output_urls: Literal["api", "presigned"] = Field("api", validation_alias=_env("EDITQ_OUTPUT_URLS"))
    presign_seconds: int = Field(3600, validation_alias=_env("EDITQ_PRESIGN_SECONDS"))

    # --- Redis and S3 ------------------------------------------------------------------------
    #: One Redis, or `sentinel://[[USER]:PASSWORD@]HOST:PORT,.../SERVICE[/DB][?sentinel_password=..]`
    #: (editq/redis_target.py has the grammar).
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=_env("EDITQ_REDIS_URL"))
    #: After a submission is written, wait until this many replicas have it before answering
    #: (Redis WAIT); 0: answer at once.
    redis_wait_replicas: int = Field(0, ge=0, le=16, validation_alias=_env("EDITQ_REDIS_WAIT_REPLICAS"))
    #: The longest that wait may take (below EDITQ_API_REDIS_TIMEOUT).
    redis_wait_timeout_ms: int = Field(200, ge=1, validation_alias=_env("EDITQ_REDIS_WAIT_TIMEOUT_MS"))
    s3_endpoint_url: str | None = Field(None, validation_alias=_env("EDITQ_S3_ENDPOINT_URL"))
    #: The S3 endpoint as clients reach it, used only to sign presigned output URLs (reads and
    #: writes keep `EDITQ_S3_ENDPOINT_URL`). Unset: presigned URLs name the internal endpoint.
    s3_public_endpoint_url: str | None = Field(None, validation_alias=_env("EDITQ_S3_PUBLIC_ENDPOINT_URL"))
    s3_bucket: str = Field("editq", validation_alias=_env("EDITQ_S3_BUCKET"))
    s3_region: str = Field("us-east-1", validation_alias=_env("EDITQ_S3_REGION", "AWS_REGION"))
    aws_access_key_id: str = Field("editq", validation_alias=_env("AWS_ACCESS_KEY_ID"))
    aws_secret_access_key: SecretStr = Field(
        SecretStr("editq-secret"), validation_alias=_env("AWS_SECRET_ACCESS_KEY")
    )
    s3_timeout_seconds: float = Field(10.0, validation_alias=_env("EDITQ_S3_TIMEOUT"))
    #: The API's Redis and S3 calls: short, not retried, so a stalled service answers 503 fast
    #: (workers keep the patient `EDITQ_S3_TIMEOUT` and Redis' default retries).
    api_redis_timeout_seconds: float = Field(1.0, gt=0, validation_alias=_env("EDITQ_API_REDIS_TIMEOUT"))
    api_s3_timeout_seconds: float = Field(2.0, gt=0, validation_alias=_env("EDITQ_API_S3_TIMEOUT"))

    # --- Provider ----------------------------------------------------------------------------
    provider: Literal["openai", "azure"] = Field("openai", validation_alias=_env("EDITQ_PROVIDER"))
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str = Field("https://api.openai.com/v1", validation_alias=_env("OPENAI_BASE_URL"))
    azure_endpoint: str = Field("", validation_alias=_env("AZURE_OPENAI_ENDPOINT"))
    azure_api_key: SecretStr | None = Field(None, validation_alias=_env("AZURE_OPENAI_API_KEY"))
    azure_api_version: str = Field("2025-04-01-preview", validation_alias=_env("EDITQ_AZURE_API_VERSION"))
    #: JSON object mapping a model name to its Azure deployment name (default: the model name).
    azure_deployments: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("EDITQ_AZURE_DEPLOYMENTS")
    )
    provider_connect_timeout: float = Field(10.0, validation_alias=_env("EDITQ_PROVIDER_CONNECT_TIMEOUT"))
    provider_read_timeout: float = Field(180.0, validation_alias=_env("EDITQ_PROVIDER_READ_TIMEOUT"))
    #: Attempts per job for retryable provider errors (timeouts, 5xx, connection errors).
    provider_max_attempts: int = Field(4, validation_alias=_env("EDITQ_PROVIDER_MAX_ATTEMPTS"))
    #: Attempts per job answered 429 rate_limit_exceeded before the job fails.
    provider_max_rate_limited: int = Field(20, validation_alias=_env("EDITQ_PROVIDER_MAX_RATE_LIMITED"))
    retry_base_seconds: float = Field(2.0, validation_alias=_env("EDITQ_RETRY_BASE_SECONDS"))
    retry_max_seconds: float = Field(120.0, validation_alias=_env("EDITQ_RETRY_MAX_SECONDS"))

    # --- Limits of the provider account ------------------------------------------------------
    provider_ipm: int = Field(250, ge=1, validation_alias=_env("EDITQ_PROVIDER_IPM"))
    provider_rpm: int = Field(250, ge=1, validation_alias=_env("EDITQ_PROVIDER_RPM"))
    provider_max_inflight: int = Field(32, ge=1, validation_alias=_env("EDITQ_PROVIDER_MAX_INFLIGHT"))
    #: The pool of provider accounts: a JSON list, or `@path` to a JSON file (editq/accounts.py).
    #: Unset: the settings above make one account, `default`.
    provider_accounts_spec: str | None = Field(None, validation_alias=_env("EDITQ_PROVIDER_ACCOUNTS"))
    #: First pause of an account out of quota, refused its key or failing (doubles per relapse).
    account_pause_seconds: float = Field(300.0, gt=0, validation_alias=_env("EDITQ_ACCOUNT_PAUSE_SECONDS"))
    #: Longest pause of an account before one call probes it again.
    account_pause_max_seconds: float = Field(
        3600.0, gt=0, validation_alias=_env("EDITQ_ACCOUNT_PAUSE_MAX_SECONDS")
    )
    #: Consecutive 5xx answers (or unreachable calls) that pause an account.
    account_error_threshold: int = Field(5, ge=1, validation_alias=_env("EDITQ_ACCOUNT_ERROR_THRESHOLD"))
    #: Largest burst the limiter lets through at once, in seconds of the configured rate.
    limiter_burst_seconds: float = Field(1.0, gt=0, validation_alias=_env("EDITQ_LIMITER_BURST_SECONDS"))
    #: Credit, in images, a tenant gets when it becomes active again after being idle.
    fair_burst_images: int = Field(10, ge=1, validation_alias=_env("EDITQ_FAIR_BURST"))

    # --- Economy lane: jobs with priority=economy go through the provider's Batch API ------------
    #: Accept priority=economy (needs EDITQ_PROVIDER=openai: Azure's batch service differs).
    economy_enabled: bool = Field(True, validation_alias=_env("EDITQ_ECONOMY"))
    #: Most jobs in one batch file (OpenAI takes up to 50,000 requests per file).
    economy_max_jobs: int = Field(50_000, ge=1, le=50_000, validation_alias=_env("EDITQ_ECONOMY_MAX_JOBS"))
    #: Most bytes in one batch file (OpenAI takes up to 200 MB).
    economy_max_bytes: int = Field(
        200_000_000, ge=1_000_000, le=200_000_000, validation_alias=_env("EDITQ_ECONOMY_MAX_BYTES")
    )
    #: A batch is sent this many seconds after the oldest job waiting for one was queued, or at
    #: once when EDITQ_ECONOMY_MAX_JOBS jobs wait.
    economy_window_seconds: float = Field(300.0, ge=0, validation_alias=_env("EDITQ_ECONOMY_WINDOW"))
    #: How often a submitted batch is asked for its status.
    economy_poll_seconds: float = Field(60.0, gt=0, validation_alias=_env("EDITQ_ECONOMY_POLL_SECONDS"))
    #: How a batch line references its images: `file` uploads each source once per batch to the
    #: provider's Files API (works with any S3); `url` sends presigned S3 URLs (the provider must
    #: be able to fetch them: public S3 only).
    economy_sources: Literal["file", "url"] = Field("file", validation_alias=_env("EDITQ_ECONOMY_SOURCES"))
    #: Batches a job may go through that fail or expire before the job fails.
    economy_max_batches: int = Field(3, ge=1, validation_alias=_env("EDITQ_ECONOMY_MAX_BATCHES"))

    # --- Models ------------------------------------------------------------------------------
    #: The model for jobs that name none. Unset: the catalogue's default chain (gpt-image-1-mini
    #: while it is live and served, then its successor, and so on). A configured default that
    #: is retired or not served is never used silently: jobs go to its successor and say so.
    default_model: str | None = Field(None, validation_alias=_env("EDITQ_DEFAULT_MODEL"))
    #: How often workers ask the provider which models the account can call (`GET /models`).
    models_refresh_seconds: float = Field(3600.0, gt=0, validation_alias=_env("EDITQ_MODELS_REFRESH_SECONDS"))
    #: Seconds added to the system clock for every date decision (retirements, budget periods,
    #: schedules, retention), to rehearse a later date. 0 in production.
    clock_offset_seconds: float = Field(0.0, validation_alias=_env("EDITQ_CLOCK_OFFSET"))
    #: Optional JSON file that overrides or extends the shipped model catalogue.
    catalogue_path: Path | None = Field(None, validation_alias=_env("EDITQ_CATALOGUE"))
    #: JSON object mapping a requested model name to the model actually called.
    model_aliases: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("EDITQ_MODEL_ALIASES")
    )

    # --- Tenants, keys, budgets ------------------------------------------------------------------
    bootstrap_api_key: SecretStr | None = Field(None, validation_alias=_env("EDITQ_BOOTSTRAP_API_KEY"))
    #: Key for `/v1/admin/*` (tenants, keys, budgets). Unset or blank: the admin API is off.
    admin_api_key: SecretStr | None = Field(None, validation_alias=_env("EDITQ_ADMIN_API_KEY"))
    idempotency_ttl_seconds: int = Field(86400, validation_alias=_env("EDITQ_IDEMPOTENCY_TTL"))
    reuse_window_seconds: int = Field(86400, validation_alias=_env("EDITQ_REUSE_WINDOW"))

    # --- Input limits ------------------------------------------------------------------------
    max_image_bytes: int = Field(50 * 1024 * 1024, validation_alias=_env("EDITQ_MAX_IMAGE_BYTES"))
    max_mask_bytes: int = Field(4 * 1024 * 1024, validation_alias=_env("EDITQ_MAX_MASK_BYTES"))
    max_image_pixels: int = Field(36_000_000, validation_alias=_env("EDITQ_MAX_IMAGE_PIXELS"))
    max_request_bytes: int = Field(
        16 * 50 * 1024 * 1024 + 8 * 1024 * 1024, validation_alias=_env("EDITQ_MAX_REQUEST_BYTES")
    )
    max_batch_items: int = Field(1000, validation_alias=_env("EDITQ_MAX_BATCH_ITEMS"))
    max_wait_seconds: int = Field(60, validation_alias=_env("EDITQ_MAX_WAIT_SECONDS"))
    #: How long `POST /v1/images/edits` (OpenAI-compatible) waits for its job before answering
    #: 504 with the job left running (its id in the `editq-job-id` header).
    compat_wait_seconds: int = Field(300, ge=1, validation_alias=_env("EDITQ_COMPAT_WAIT_SECONDS"))
    #: A request body must arrive whole within this many seconds of the request's start (408).
    body_timeout_seconds: float = Field(120.0, gt=0, validation_alias=_env("EDITQ_BODY_TIMEOUT_SECONDS"))
    #: Multipart uploads (submits with files, `POST /v1/uploads`) a tenant may stream at once,
    #: per API process (429 `too_many_uploads`).
    max_concurrent_uploads: int = Field(32, ge=1, validation_alias=_env("EDITQ_MAX_CONCURRENT_UPLOADS"))
    #: `/readyz` answers 503 once no worker heartbeat has been live for this many seconds.
    ready_worker_grace_seconds: float = Field(10.0, ge=0, validation_alias=_env("EDITQ_READY_WORKER_GRACE"))

    # --- Webhooks ----------------------------------------------------------------------------
    webhook_allow_private: bool = Field(False, validation_alias=_env("EDITQ_WEBHOOK_ALLOW_PRIVATE"))
    webhook_allow_http: bool = Field(False, validation_alias=_env("EDITQ_WEBHOOK_ALLOW_HTTP"))
    webhook_timeout_seconds: float = Field(15.0, validation_alias=_env("EDITQ_WEBHOOK_TIMEOUT"))
    #: Seconds after the event at which each attempt is due (comma separated).
    webhook_schedule: Annotated[tuple[float, ...], NoDecode] = Field(
        DEFAULT_WEBHOOK_SCHEDULE, validation_alias=_env("EDITQ_WEBHOOK_SCHEDULE")
    )
    #: Jitter applied to each retry delay, as a fraction of the delay.
    webhook_jitter: float = Field(0.1, ge=0, le=0.5, validation_alias=_env("EDITQ_WEBHOOK_JITTER"))
    #: How long a rotated-out signing secret still signs deliveries.
    secret_overlap_seconds: int = Field(86400, validation_alias=_env("EDITQ_SECRET_OVERLAP"))
    #: Fernet keys, comma separated, that encrypt webhook signing secrets in Redis: the first
    #: encrypts, every one decrypts (rotation). Unset: secrets are stored unencrypted.
    secrets_key: SecretStr | None = Field(None, validation_alias=_env("EDITQ_SECRETS_KEY"))

    # --- Retention ---------------------------------------------------------------------------
    job_retention_seconds: int = Field(30 * 86400, validation_alias=_env("EDITQ_JOB_RETENTION"))
    source_retention_seconds: int = Field(7 * 86400, validation_alias=_env("EDITQ_SOURCE_RETENTION"))
    output_retention_seconds: int = Field(7 * 86400, validation_alias=_env("EDITQ_OUTPUT_RETENTION"))

    # --- Workers -----------------------------------------------------------------------------
    worker_concurrency: int = Field(16, ge=1, validation_alias=_env("EDITQ_WORKER_CONCURRENCY"))
    #: Celery visibility timeout: far longer than any call, so Redis never redelivers live work.
    visibility_timeout: int = Field(3600, validation_alias=_env("EDITQ_VISIBILITY_TIMEOUT"))
    #: A running job's lease; a worker renews it every third of this, a dead worker's lapses.
    lease_seconds: float = Field(30.0, gt=0, validation_alias=_env("EDITQ_LEASE_SECONDS"))
    #: How long an admitted job may wait for a worker before it is dispatched again.
    admit_grace_seconds: float = Field(60.0, gt=0, validation_alias=_env("EDITQ_ADMIT_GRACE_SECONDS"))
    #: Times a job is restarted after its worker died before it fails with `worker_lost`.
    max_worker_losses: int = Field(3, validation_alias=_env("EDITQ_MAX_WORKER_LOSSES"))
    #: Workers send task events from the start (Flower also switches them on while it watches;
    #: false saves each job the CPU of its two buffered events when nobody does).
    task_events: bool = Field(True, validation_alias=_env("EDITQ_TASK_EVENTS"))
    housekeeping_seconds: float = Field(5.0, gt=0, validation_alias=_env("EDITQ_HOUSEKEEPING_SECONDS"))
    #: Where workers and beat keep the state file `editq probe` reads (one per process name).
    probe_dir: Path = Field(
        Path(tempfile.gettempdir()) / "editq-probe", validation_alias=_env("EDITQ_PROBE_DIR")
    )

    # The `editq` client commands read EDITQ_API_URL and EDITQ_API_KEY themselves (editq.client.config):
    # they are installed without these settings.

    # --- Flower ------------------------------------------------------------------------------
    flower_port: int = Field(5555, validation_alias=_env("EDITQ_FLOWER_PORT"))
    flower_basic_auth: SecretStr | None = Field(None, validation_alias=_env("EDITQ_FLOWER_BASIC_AUTH"))

    # --- `editq run` (make run): where it keeps state, and the services it starts -------------
    state_dir: Path = Field(Path(".editq"), validation_alias=_env("EDITQ_STATE_DIR"))
    local_redis_port: int = Field(6390, validation_alias=_env("EDITQ_LOCAL_REDIS_PORT"))
    local_s3_port: int = Field(9010, validation_alias=_env("EDITQ_LOCAL_S3_PORT"))
    local_sim_port: int = Field(8100, validation_alias=_env("EDITQ_LOCAL_SIM_PORT"))

    #: Prefix of every Redis key editq writes.
    redis_prefix: str = Field("editq", validation_alias=_env("EDITQ_REDIS_PREFIX"))
    log_level: str = Field("INFO", validation_alias=_env("EDITQ_LOG_LEVEL"))
    #: `json` (one object per line) or `console`; unset: json unless stderr is a terminal.
    log_format: Literal["json", "console"] | None = Field(None, validation_alias=_env("EDITQ_LOG_FORMAT"))
    #: When set, every `/metrics` editq serves (the API's, Flower's) needs `Authorization: Bearer` it.
    metrics_token: SecretStr | None = Field(None, validation_alias=_env("EDITQ_METRICS_TOKEN"))

    @field_validator(
        "default_model",
        "s3_public_endpoint_url",
        "secrets_key",
        "bootstrap_api_key",
        "log_format",
        "metrics_token",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_api_key", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("azure_deployments", "model_aliases", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return {}
            parsed = (
                json.loads(text)
                if text.startswith("{")
                else dict(item.split("=", 1) for item in text.split(",") if "=" in item)
            )
            return {str(k).strip(): str(v).strip() for k, v in parsed.items()}
        return value

    @field_validator("webhook_schedule", mode="before")
    @classmethod
    def _schedule(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("s3_public_endpoint_url")
    @classmethod
    def _public_endpoint(cls, value: str | None) -> str | None:
        """An http(s) address clients open: no credentials, query or fragment."""
        if value is None:
            return None
        text = value.strip()
        url = urllib.parse.urlsplit(text)
        if (
            any(c.isspace() or not c.isprintable() for c in text)
            or url.scheme not in ("http", "https")
            or not url.hostname
            or url.port == 0
            or "@" in url.netloc
            or url.query
            or url.fragment
        ):
            raise ValueError(
                "EDITQ_S3_PUBLIC_ENDPOINT_URL must be an http(s) URL, like https://s3.example.com"
            )
        return url.geturl().rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        redis_target.parse(value)  # RedisURLError (a ValueError) names what is wrong
        return value

    _accounts: tuple[Account, ...] = PrivateAttr(())

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.redis_wait_replicas and self.redis_wait_timeout_ms >= self.api_redis_timeout_seconds * 1000:
            raise ValueError("EDITQ_REDIS_WAIT_TIMEOUT_MS must be below EDITQ_API_REDIS_TIMEOUT (in ms)")
        if not self.webhook_schedule:
            raise ValueError("EDITQ_WEBHOOK_SCHEDULE needs at least one attempt")
        key = self.bootstrap_api_key
        if key is not None and key.get_secret_value().lower() in _PLACEHOLDERS:
            raise ValueError("EDITQ_BOOTSTRAP_API_KEY is a placeholder; set a real key")
        admin = self.admin_api_key.get_secret_value() if self.admin_api_key else None
        if admin is not None and (admin.lower() in _PLACEHOLDERS or len(admin) < MIN_ADMIN_KEY_CHARS):
            raise ValueError(
                f"EDITQ_ADMIN_API_KEY is a placeholder or shorter than {MIN_ADMIN_KEY_CHARS} characters"
            )
        if self.provider == "azure" and not self.azure_endpoint:
            raise ValueError("EDITQ_PROVIDER=azure needs AZURE_OPENAI_ENDPOINT")
        if self.reuse_window_seconds > self.output_retention_seconds:
            raise ValueError("EDITQ_REUSE_WINDOW cannot be longer than EDITQ_OUTPUT_RETENTION")
        if self.lease_seconds * 2 > self.visibility_timeout:
            raise ValueError("EDITQ_VISIBILITY_TIMEOUT must be well above EDITQ_LEASE_SECONDS")
        if self.secrets_key is not None and not all(
            _is_fernet_key(k) for k in self.secrets_key.get_secret_value().split(",")
        ):
            raise ValueError(
                "EDITQ_SECRETS_KEY must be Fernet keys (32 url-safe base64 bytes), comma separated"
            )
        env = _ENV.get()
        pool = accounts_module.load(
            self.provider_accounts_spec,
            os.environ if env is None else env,
            catalogue_module.load(self.catalogue_path),
        )
        self._accounts = pool or (self._shorthand(),)
        return self

    def _shorthand(self) -> Account:
        """The one account the single-account settings describe."""
        azure = self.provider == "azure"
        key = (self.azure_api_key or self.openai_api_key) if azure else self.openai_api_key
        return Account(
            name=DEFAULT_ACCOUNT,
            kind=self.provider,
            ipm=self.provider_ipm,
            rpm=self.provider_rpm,
            max_inflight=self.provider_max_inflight,
            base_url=(self.azure_endpoint if azure else self.openai_base_url).rstrip("/"),
            api_key=key.get_secret_value() if key is not None else None,
            deployments=dict(self.azure_deployments),
            api_version=self.azure_api_version,
        )

    @property
    def accounts(self) -> tuple[Account, ...]:
        """The provider accounts, in the order configured."""
        return self._accounts

    def account(self, name: str) -> Account | None:
        return next((a for a in self._accounts if a.name == name), None)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Settings from an explicit environment (a child process's), not this process's."""
        token = _ENV.set(env)
        try:
            return cls.model_validate(dict(env))
        finally:
            _ENV.reset(token)

    @property
    def clock(self) -> Clock:
        return Clock(self.clock_offset_seconds)

    @property
    def economy_available(self) -> bool:
        """Whether priority=economy is accepted (enabled, with an account whose provider has
        the Batch API)."""
        return self.economy_enabled and self.economy_account is not None

    @property
    def economy_account(self) -> Account | None:
        """The account the economy lane's batches go to: the first OpenAI account (Azure's batch
        routes are not spoken). Every batch, from upload to its results, stays on it, so it must
        stay first while batches are in flight."""
        return next((a for a in self._accounts if a.kind == "openai"), None)

    @property
    def worker_drain_seconds(self) -> float:
        """How long a worker may take to finish its calls after SIGTERM (warm shutdown): a whole
        provider call, then storing its outputs and settling it. Grace periods exceed it."""
        return self.provider_connect_timeout + self.provider_read_timeout + DRAIN_MARGIN_SECONDS

    @property
    def api_base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")


def _is_fernet_key(text: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(text.strip().encode())) == 32
    except (ValueError, binascii.Error):
        return False


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
