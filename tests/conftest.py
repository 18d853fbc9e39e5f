"""Session services (redis-server, S3, simulator) and the default stack for integration tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from editq.ops import launcher
from tests import images
from tests.support.stack import PINNED_OFFSET, PrivateSim, Services, Universe, universe


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    root = tmp_path_factory.mktemp("stack")
    logs = root / "logs"
    logs.mkdir()
    redis_port, s3_port, sim_port = launcher.free_port(), launcher.free_port(), launcher.free_port()
    procs = [
        launcher.redis_server(redis_port, root / "redis", aof=True, echo=False, log=logs / "redis.log"),
        launcher.s3_server(
            s3_port,
            root / "s3",
            access_key="editq-test",
            secret_key="editq-test-secret",
            echo=False,
            log=logs / "s3.log",
        ),
        launcher.simulator(
            sim_port,
            args=["--latency", "0.05-0.15", "--clock-offset", PINNED_OFFSET],
            echo=False,
            log=logs / "sim.log",
        ),
    ]
    try:
        yield Services(
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
            s3_url=f"http://127.0.0.1:{s3_port}",
            sim_url=f"http://127.0.0.1:{sim_port}/v1",
            logs=logs,
        )
    finally:
        for proc in reversed(procs):
            proc.stop()


@pytest.fixture(scope="session")
def stack(services: Services) -> Iterator[Universe]:
    """The default stack: API, two workers and beat, shared by tests that need nothing special."""
    u = universe(services)
    try:
        u.start_api()
        u.start_worker(6, wait=False)
        u.start_worker(6, wait=False)
        u.wait_for_workers(2)
        u.start_beat()
        yield u
    finally:
        u.stop()


@pytest.fixture(scope="session")
def idle(services: Services) -> Iterator[Universe]:
    """An API without workers, shared by the session: its jobs stay queued (to be waited on and
    canceled)."""
    u = universe(services)
    try:
        u.start_api()
        yield u
    finally:
        u.stop()


@pytest.fixture
def make_stack(services: Services) -> Iterator[Callable[..., Universe]]:
    """A private stack with its own settings (and its own Redis prefix), stopped after the test."""
    made: list[Universe] = []

    def make(
        *, api: bool = True, workers: int = 1, concurrency: int = 6, beat: bool = True, **env: str
    ) -> Universe:
        u = universe(services, **env)
        made.append(u)
        if api:
            u.start_api()
        for _ in range(workers):
            u.start_worker(concurrency, wait=False)
        if workers:
            u.wait_for_workers(workers)
        if beat:
            u.start_beat()
        return u

    yield make
    for u in made:
        u.stop()


@pytest.fixture
def tenant(stack: Universe) -> tuple[str, str]:
    return stack.tenant()


@pytest.fixture
def client(stack: Universe, tenant: tuple[str, str]) -> Iterator[httpx.Client]:
    with stack.client(tenant[1]) as c:
        yield c


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A 320x240 PNG on disk."""
    path = tmp_path / "photo.png"
    path.write_bytes(images.scene(320, 240))
    return path


@pytest.fixture
def private_sim() -> Iterator[PrivateSim]:
    port = launcher.free_port()
    proc = launcher.simulator(port, args=["--latency", "0.2", "--clock-offset", PINNED_OFFSET], echo=False)
    try:
        yield PrivateSim(proc, f"http://127.0.0.1:{port}")
    finally:
        proc.stop()


@pytest.fixture
def make_sim() -> Iterator[Callable[..., PrivateSim]]:
    """Simulators of a test's own, started with the given command-line options."""
    made: list[PrivateSim] = []

    def make(*args: str) -> PrivateSim:
        port = launcher.free_port()
        proc = launcher.simulator(port, args=["--latency", "0.05", *args], echo=False)
        made.append(PrivateSim(proc, f"http://127.0.0.1:{port}"))
        return made[-1]

    try:
        yield make
    finally:
        for sim in made:
            sim.proc.stop()


@pytest.fixture(scope="session")
def sim_admin(services: Services) -> Callable[[dict[str, object]], None]:
    base = services.sim_url.removesuffix("/v1")

    def configure(changes: dict[str, object]) -> None:
        httpx.post(f"{base}/_sim/config", json=changes, timeout=10).raise_for_status()

    return configure


@pytest.fixture
def private(
    services: Services, tmp_path: Path
) -> Iterator[tuple[Universe, Path, int, launcher.Proc, launcher.Proc]]:
    """A stack with its own redis-server (AOF) and its own S3 server, so a test can stop or freeze them."""
    redis_port, s3_port = launcher.free_port(), launcher.free_port()
    redis = launcher.redis_server(redis_port, tmp_path / "redis", aof=True, echo=False)
    s3 = launcher.s3_server(
        s3_port, tmp_path / "s3", access_key="editq-test", secret_key="editq-test-secret", echo=False
    )
    own = Services(
        f"redis://127.0.0.1:{redis_port}/0", f"http://127.0.0.1:{s3_port}", services.sim_url, services.logs
    )
    u = universe(own)
    u.start_api()
    try:
        yield u, tmp_path, redis_port, redis, s3
    finally:
        u.stop()
        s3.stop()
        redis.stop()


#: Test modules that start real processes of their own without the session's services.
OWN_PROCESSES = (
    "test_faults",
    "test_compose",
    "test_run_and_cli",
    "test_studio",
    "test_simulator",
    "test_lua",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`integration`: the test runs real processes (the session's services or its own)."""
    for item in items:
        module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
        if "services" in getattr(item, "fixturenames", ()) or module in OWN_PROCESSES:
            item.add_marker(pytest.mark.integration)
