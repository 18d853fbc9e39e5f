"""Starting editq's processes: what `make run` (`editq run`) does, and what the tests and
benchmarks reuse to stand the same stack up on private ports."""

from __future__ import annotations

import base64
import contextlib
import ctypes
import enum
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from editq import catalogue, lifecycle, logs, redis_target, telemetry
from editq.clock import SYSTEM, Clock
from editq.lifecycle import Availability
from editq.settings import Settings
from editq.storage.keys import Keys
from editq.storage.redis import connect

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout}s ({last})")


@dataclass
class Proc:
    """A child process with its output copied to ours, each line prefixed with its name."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path | None = None
    pump: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            self.signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.drained()

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)

    def drained(self) -> None:
        """After it exited: the rest of its output is copied."""
        if self.pump is not None:
            self.pump.join(2)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self.popen.wait(10)


def _pump(name: str, stream: IO[bytes], sink: IO[str] | None, log: IO[bytes] | None) -> None:
    for raw in iter(stream.readline, b""):
        if log is not None:
            log.write(raw)
            log.flush()
        if sink is not None:
            sink.write(f"{name:>8} | {raw.decode('utf-8', 'replace')}")
            sink.flush()
    stream.close()
    if log is not None:
        log.close()


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the process that started it dies (Linux)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def spawn(
    name: str,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    echo: bool = True,
    log: Path | None = None,
) -> Proc:
    popen = subprocess.Popen(  # noqa: S603 - argv built here, never from a shell string
        argv,
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
        # its own session: a terminal's Ctrl-C reaches the launcher alone, which then stops
        # every process in order (Redis must outlive the workers finishing their calls)
        start_new_session=True,
    )
    assert popen.stdout is not None
    log_file = log.open("ab") if log is not None else None
    pump = threading.Thread(
        target=_pump, args=(name, popen.stdout, sys.stdout if echo else None, log_file), daemon=True
    )
    pump.start()
    return Proc(name, popen, log, pump)


def redis_server(
    port: int,
    data_dir: Path,
    *,
    aof: bool = True,
    echo: bool = True,
    log: Path | None = None,
    extra: tuple[str, ...] = (),
) -> Proc:
    """redis-server on `port`; `extra`: more options, like `("--replicaof", "127.0.0.1", "6379")`."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (make run installs it with apt when run as root)")
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes" if aof else "no",
        "--appendfsync",
        "everysec",
        "--maxmemory-policy",
        "noeviction",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        *extra,
    ]
    proc = spawn("redis", argv, echo=echo, log=log)
    wait_for_port(port)
    return proc


def s3_server(
    port: int, data_dir: Path, *, access_key: str, secret_key: str, echo: bool = True, log: Path | None = None
) -> Proc:
    """MinIO when it is on PATH, otherwise moto's S3 server (in memory)."""
    minio = shutil.which("minio")
    if minio is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {"MINIO_ROOT_USER": access_key, "MINIO_ROOT_PASSWORD": secret_key}
        argv = [minio, "server", str(data_dir), "--address", f"127.0.0.1:{port}", "--quiet"]
        proc = spawn("minio", argv, env=env, echo=echo, log=log)
    else:
        proc = spawn(
            "s3", [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], echo=echo, log=log
        )
    wait_for_http(f"http://127.0.0.1:{port}/", timeout=60)
    return proc


def simulator(
    port: int,
    *,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    echo: bool = True,
    log: Path | None = None,
) -> Proc:
    argv = [PYTHON, "-m", "editq.tools.cli", "sim", "--host", "127.0.0.1", "--port", str(port), *(args or [])]
    proc = spawn("sim", argv, env=env, echo=echo, log=log)
    wait_for_http(f"http://127.0.0.1:{port}/", timeout=60)
    return proc


def api(env: dict[str, str], port: int, *, echo: bool = True, log: Path | None = None) -> Proc:
    argv = [PYTHON, "-m", "editq.tools.cli", "api", "--host", "127.0.0.1", "--port", str(port)]
    proc = spawn("api", argv, env=env, echo=echo, log=log)
    wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
    return proc


def worker(
    env: dict[str, str],
    *,
    name: str = "worker",
    concurrency: int = 8,
    echo: bool = True,
    log: Path | None = None,
) -> Proc:
    argv = [PYTHON, "-m", "editq.tools.cli", "worker", "--concurrency", str(concurrency), "--name", name]
    return spawn(name, argv, env=env, echo=echo, log=log)


def beat(env: dict[str, str], state_dir: Path, *, echo: bool = True, log: Path | None = None) -> Proc:
    state_dir.mkdir(parents=True, exist_ok=True)
    argv = [PYTHON, "-m", "editq.tools.cli", "beat", "--schedule", str(state_dir / "celerybeat-schedule")]
    return spawn("beat", argv, env=env, echo=echo, log=log)


def flower(
    env: dict[str, str], port: int, basic_auth: str, *, echo: bool = True, log: Path | None = None
) -> Proc:
    """Flower reads its password from FLOWER_BASIC_AUTH, so it never shows in `ps`."""
    argv = [PYTHON, "-m", "editq.tools.cli", "flower", "--port", str(port), "--address", "127.0.0.1"]
    return spawn("flower", argv, env={**env, "FLOWER_BASIC_AUTH": basic_auth}, echo=echo, log=log)


def wait_for_worker(
    redis_url: str, prefix: str, count: int = 1, timeout: float = 60.0, clock: Clock = SYSTEM
) -> None:
    """Until `count` workers advertise edit slots in Redis."""
    client = connect(redis_url)
    workers = Keys(prefix).workers
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if client.zcount(workers, f"({clock.ms()}", "+inf") >= count:
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise TimeoutError(f"{count} worker(s) did not register in {timeout}s")


#: Backoff before restarting a process that exited: doubles from the first to the last.
RESTART_BACKOFF = (1.0, 30.0)
#: A process that stayed up this long is healthy again: its next restart starts the backoff over.
RESTART_RESET_SECONDS = 60.0


class Stage(enum.IntEnum):
    """When `editq run` stops a process: lowest first, each stage once the one before ended."""

    API = 0  #: no new submissions
    WORKERS = 1  #: warm shutdown: their provider calls finish, their jobs settle
    WATCHERS = 2  #: beat and Flower
    SIMULATOR = 3
    STORAGE = 4  #: Redis and S3, which every stage before needed until its end


#: Seconds a process other than a worker gets to exit after SIGTERM before it is killed.
STOP_SECONDS = 15.0


@dataclass
class Supervised:
    """A process and how to start it again; restarted with backoff when it exits."""

    start: Callable[[], Proc]
    proc: Proc
    stage: Stage = Stage.STORAGE
    #: Seconds it gets to exit after SIGTERM before SIGKILL.
    grace: float = STOP_SECONDS
    started: float = field(default_factory=time.monotonic)
    delay: float = RESTART_BACKOFF[0]
    due: float | None = None

    def check(self, now: float, say: Callable[[str], None]) -> None:
        if self.proc.alive():
            return
        if self.due is None:
            if now - self.started > RESTART_RESET_SECONDS:
                self.delay = RESTART_BACKOFF[0]
            self.due = now + self.delay
            say(f"{self.proc.name} exited with {self.proc.popen.returncode}; restarting in {self.delay:.0f}s")
            self.delay = min(RESTART_BACKOFF[1], self.delay * 2)
        elif now >= self.due:
            try:
                self.proc = self.start()
            except (OSError, RuntimeError, TimeoutError) as exc:
                self.due = now + self.delay
                say(f"{self.proc.name} did not start again ({exc}); next try in {self.delay:.0f}s")
                self.delay = min(RESTART_BACKOFF[1], self.delay * 2)
                return
            self.started, self.due = time.monotonic(), None
            say(f"{self.proc.name} restarted (pid {self.proc.pid})")


@dataclass
class Stack:
    """The processes `editq run` started, restarted when they exit, stopped stage by stage."""

    units: list[Supervised] = field(default_factory=list)
    #: Names of the processes in the order they ended when the stack stopped.
    stopped: list[str] = field(default_factory=list)

    def add(
        self, start: Callable[[], Proc], stage: Stage = Stage.STORAGE, grace: float = STOP_SECONDS
    ) -> Proc:
        unit = Supervised(start, start(), stage, grace)
        self.units.append(unit)
        return unit.proc

    @property
    def procs(self) -> list[Proc]:
        return [unit.proc for unit in self.units]

    def supervise(self, say: Callable[[str], None]) -> None:
        now = time.monotonic()
        for unit in self.units:
            unit.check(now, say)

    def stop(self, say: Callable[[str], None] = lambda _: None, hurry: threading.Event | None = None) -> None:
        """SIGTERM stage by stage; the next stage starts once every process of this one ended
        (or was killed after its grace). `hurry` set (a second Ctrl-C): kill what still runs."""
        hurry = hurry or threading.Event()
        for stage in sorted({unit.stage for unit in self.units}):
            units = [unit for unit in self.units if unit.stage == stage and unit.proc.alive()]
            for unit in units:
                say(f"stopping {unit.proc.name} (up to {unit.grace:.0f} s)")
                unit.proc.signal()
            for unit in units:
                self._await(unit, say, hurry)

    def _await(self, unit: Supervised, say: Callable[[str], None], hurry: threading.Event) -> None:
        proc, deadline = unit.proc, time.monotonic() + unit.grace
        while proc.alive() and time.monotonic() < deadline and not hurry.is_set():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(0.2)
        if proc.alive():
            say(f"{proc.name} still running: killed")
            proc.kill()
        proc.drained()
        self.stopped.append(proc.name)
        say(f"stopped {proc.name} (exit {proc.popen.returncode})")


def _persistent_secret(path: Path, make: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.write_text(make + "\n")
    path.chmod(0o600)
    return make


@contextlib.contextmanager
def _signals(stop: threading.Event, hurry: threading.Event) -> Iterator[None]:
    """The first Ctrl-C or SIGTERM stops the stack in order; a second one hurries it."""

    def handler(signum: int, frame: object) -> None:
        (hurry if stop.is_set() else stop).set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def model_banner(settings: Settings) -> list[str]:
    """The default model and what is retiring, before the provider's listing is known (workers
    learn it and log what changes)."""
    state = lifecycle.report(
        catalogue.load(settings.catalogue_path),
        configured_default=settings.default_model,
        aliases=settings.model_aliases,
        availability=Availability(),
        today=settings.clock.today(),
    )
    lines = [
        f"default  {state['default'] or 'none'}" + ("" if settings.default_model else " (default chain)")
    ]
    lines.extend(f"notice   {line}" for line in lifecycle.announcements(state))
    return lines


def run() -> int:
    """Run the whole stack in the foreground until Ctrl-C or SIGTERM. Services the environment
    names (EDITQ_REDIS_URL, EDITQ_S3_ENDPOINT_URL, OPENAI_API_KEY) are used, not started."""
    settings = Settings()
    logs.configure(settings)
    state = settings.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    stack = Stack()
    stop, hurry = threading.Event(), threading.Event()
    out = sys.stdout

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    with _signals(stop, hurry):
        try:
            env = _start_backing_services(settings, stack, state, say)
            key, flower_auth = _local_secrets(settings, state, env)
            if "log_format" not in settings.model_fields_set and sys.stderr.isatty():
                env["EDITQ_LOG_FORMAT"] = "console"  # the children write to pipes, read by a person
            full = {**os.environ, **env}
            stack.add(lambda: api(full, settings.api_port), Stage.API)
            drain = settings.worker_drain_seconds
            stack.add(lambda: worker(full, concurrency=settings.worker_concurrency), Stage.WORKERS, drain)
            stack.add(lambda: beat(full, state / "beat"), Stage.WATCHERS)
            stack.add(lambda: flower(full, settings.flower_port, flower_auth), Stage.WATCHERS)
            _print_banner(say, settings, full, key, flower_auth)
            while not stop.wait(1.0):
                stack.supervise(say)
            return 0
        finally:
            say("stopping editq: the API first, then the workers finish their calls (Ctrl-C again: kill)")
            stack.stop(say, hurry)
            say("editq stopped")


def _start_backing_services(
    settings: Settings, stack: Stack, state: Path, say: Callable[[str], None]
) -> dict[str, str]:
    """Start Redis, S3 and the simulator unless the environment names them; returns the
    environment editq's processes need to find them."""
    given = settings.model_fields_set
    access = settings.aws_access_key_id
    secret = settings.aws_secret_access_key.get_secret_value()
    env: dict[str, str] = {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}
    if "redis_url" in given:
        say(f"using Redis at {redis_target.parse(settings.redis_url).redacted()}")
    else:
        stack.add(lambda: redis_server(settings.local_redis_port, state / "redis"), Stage.STORAGE)
        env["EDITQ_REDIS_URL"] = f"redis://127.0.0.1:{settings.local_redis_port}/0"
    if "s3_endpoint_url" in given:
        say(f"using S3 at {settings.s3_endpoint_url}")
    else:
        port = settings.local_s3_port
        stack.add(lambda: s3_server(port, state / "s3", access_key=access, secret_key=secret), Stage.STORAGE)
        env["EDITQ_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    if settings.openai_api_key is not None:
        say(f"calling the provider at {settings.openai_base_url}")
    else:
        stack.add(lambda: simulator(settings.local_sim_port, args=["--latency", "0.5-1.5"]), Stage.SIMULATOR)
        env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{settings.local_sim_port}/v1"
        env["OPENAI_API_KEY"] = "sk-editq-simulator"
    return env


def _local_secrets(settings: Settings, state: Path, env: dict[str, str]) -> tuple[str, str]:
    """The API key and Flower credentials (kept in the state folder when not configured), added
    to `env` with the secrets key and the local webhook allowances; returns the key and credentials."""
    given = settings.model_fields_set
    key = (
        settings.bootstrap_api_key.get_secret_value()
        if settings.bootstrap_api_key
        else _persistent_secret(state / "dev-api-key", "eq_dev_" + secrets.token_urlsafe(24))
    )
    flower_auth = (
        settings.flower_basic_auth.get_secret_value()
        if settings.flower_basic_auth
        else _persistent_secret(state / "flower-auth", "admin:" + secrets.token_urlsafe(12))
    )
    if settings.secrets_key is None:
        env["EDITQ_SECRETS_KEY"] = _persistent_secret(
            state / "secrets-key", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        )
    env["EDITQ_BOOTSTRAP_API_KEY"] = key
    env["EDITQ_FLOWER_BASIC_AUTH"] = flower_auth
    # a local run posts webhooks to local receivers unless told otherwise
    for name, var in (
        ("webhook_allow_private", "EDITQ_WEBHOOK_ALLOW_PRIVATE"),
        ("webhook_allow_http", "EDITQ_WEBHOOK_ALLOW_HTTP"),
    ):
        if name not in given:
            env[var] = "true"
    return key, flower_auth


def _print_banner(
    say: Callable[[str], None], settings: Settings, full: dict[str, str], key: str, flower_auth: str
) -> None:
    say("")
    say("editq is running (Ctrl-C stops everything; a process that exits is restarted):")
    say(f"  API      http://127.0.0.1:{settings.api_port}   (docs: /docs)")
    say(f"  API key  {key}")
    say(f"  Flower   http://127.0.0.1:{settings.flower_port}   (user:password {flower_auth})")
    say(f"  Redis    {redis_target.parse(full.get('EDITQ_REDIS_URL', settings.redis_url)).redacted()}")
    say(f"  S3       {full.get('EDITQ_S3_ENDPOINT_URL', 'AWS')}")
    say(f"  model    {full.get('OPENAI_BASE_URL', settings.openai_base_url)}")
    for line in model_banner(settings):
        say(f"  {line}")
    for line in metrics_banner(settings):
        say(f"  {line}")
    say("")


def metrics_banner(settings: Settings) -> list[str]:
    """Where Prometheus scrapes editq, and what it finds there."""
    guarded = " (Authorization: Bearer $EDITQ_METRICS_TOKEN)" if settings.metrics_token else ""
    lines = [f"metrics  http://127.0.0.1:{settings.api_port}/metrics{guarded}: the whole cluster,"]
    lines.append("         the same series from every API replica (aggregate with max without(instance))")
    names = [f.name for f in (*telemetry.RECORDED, *telemetry.GAUGES)]
    for start in range(0, len(names), 3):
        lines.append("         " + ", ".join(names[start : start + 3]))
    return lines
