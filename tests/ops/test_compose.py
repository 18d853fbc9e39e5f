"""docker-compose.yml is valid and runs the same stack (checked with `docker-compose config`):
pinned images, a healthcheck on every service, workers that get to finish their calls."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from editq.settings import Settings
from tests.support import deploy

ROOT = Path(__file__).resolve().parents[2]


def _config(**env: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (make test installs it as root)")
    return subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def test_compose_file_is_valid_and_complete() -> None:
    result = _config(EDITQ_FLOWER_BASIC_AUTH="ops:secret")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"redis", "minio", "minio-bucket", "sim", "api", "worker", "beat", "flower"} <= set(services)
    assert "--appendonly" in services["redis"]["command"]
    for name in ("redis", "minio", "api", "sim"):
        assert "healthcheck" in services[name], name
    for name in ("api", "worker", "beat", "flower"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["minio-bucket"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["EDITQ_REDIS_URL"] == "redis://redis:6379/0"
    assert "mb --ignore-existing local/editq" in services["minio-bucket"]["command"][0]
    for name in ("redis", "api", "worker", "beat", "flower"):
        assert services[name]["restart"] == "unless-stopped", name
    assert not [arg for arg in services["flower"]["command"] if "secret" in arg]
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == "ops:secret"


PINNED = re.compile(r":(\d+\.\d+\.\d+(-[a-z0-9]+)*|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)$")


@functools.cache
def _services() -> dict[str, Any]:
    """`docker-compose config`, run once for the tests that only read it."""
    result = _config(EDITQ_FLOWER_BASIC_AUTH="ops:secret")
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = yaml.safe_load(result.stdout)["services"]
    return services


def test_every_image_is_pinned_and_minio_comes_from_quay() -> None:
    services = _services()
    for name, service in services.items():
        image = service["image"]
        if "build" in service:
            assert image == "editq:local", name
            continue
        assert PINNED.search(image), f"{name}: {image} is not pinned to a release"
    assert services["minio"]["image"] == "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
    assert services["minio-bucket"]["image"] == "quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z"
    dockerfile = (ROOT / "ops" / "Dockerfile").read_text()
    assert PINNED.search(dockerfile.split("FROM ", 1)[1].split()[0]), "the base image is not pinned"


def test_every_service_has_a_healthcheck_that_editq_understands() -> None:
    services = _services()
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test", ["NONE"])
        if service.get("restart") == "no":  # one-shot: others wait for it to complete
            waiting = [s for s in services.values() if name in s.get("depends_on", {})]
            assert waiting, name
            assert all(
                s["depends_on"][name]["condition"] == "service_completed_successfully" for s in waiting
            ), name
            continue
        assert test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
        assert len(test) > 1, name
    for role in ("api", "worker", "beat", "flower"):
        argv = services[role]["healthcheck"]["test"][1:]
        assert argv == ["editq", "probe", role], role
        assert deploy.editq_command(argv) == "probe"
    assert services["minio"]["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]


def test_workers_get_longer_than_a_call_to_stop_and_stop_after_the_api() -> None:
    services = _services()
    worker = services["worker"]
    drain = Settings.from_env(worker["environment"]).worker_drain_seconds
    assert deploy.seconds(worker["stop_grace_period"]) > drain
    # compose stops dependents first: the API before the worker, the worker before its services
    assert "worker" in services["api"]["depends_on"]
    assert {"redis", "minio-bucket", "sim"} <= set(worker["depends_on"])
    assert services["worker"]["depends_on"]["sim"]["condition"] == "service_healthy"


def test_compose_sets_only_settings_editq_reads_and_presigns_for_the_host() -> None:
    services = _services()
    for name in ("api", "worker", "beat", "flower", "sim"):
        assert not deploy.unknown_variables(services[name]["environment"]), name
    env = services["api"]["environment"]
    settings = Settings.from_env(env)  # the defaults compose passes are valid settings
    assert settings.secrets_key is None  # blank: unset, not an invalid key
    assert settings.bootstrap_api_key is None  # blank: no `dev` tenant with an empty key
    assert env["EDITQ_S3_PUBLIC_ENDPOINT_URL"] == "http://localhost:9000"
    assert env["EDITQ_S3_ENDPOINT_URL"] == "http://minio:9000"
    published = {(p["host_ip"], p["published"], p["target"]) for p in _ports(services["minio"])}
    assert ("127.0.0.1", 9000, 9000) in published
    assert "ilm" not in services["minio-bucket"]["command"][0], "editq writes its own lifecycle rule"


def _ports(service: dict[str, Any]) -> list[dict[str, Any]]:
    """Ports as `docker-compose config` prints them (long form, or `ip:host:container`)."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append({**port, "published": int(port["published"]), "target": int(port["target"])})
        else:
            ip, host, target = str(port).removesuffix("/tcp").split(":")
            found.append({"host_ip": ip, "published": int(host), "target": int(target)})
    return found


def test_k8s_restarts_workers_and_keeps_passwords_out_of_argv() -> None:
    docs = {
        doc["metadata"]["name"]: doc
        for path in (ROOT / "ops" / "k8s").glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "Deployment"
    }
    for name in ("editq-api", "editq-worker", "editq-flower"):
        container = docs[name]["spec"]["template"]["spec"]["containers"][0]
        assert "livenessProbe" in container, name
        assert "basic-auth" not in " ".join(container["command"]), name
    flower = docs["editq-flower"]["spec"]["template"]["spec"]["containers"][0]
    assert [e["name"] for e in flower["env"]] == ["FLOWER_BASIC_AUTH"]


def test_compose_refuses_to_run_flower_without_credentials() -> None:
    env = {k: v for k, v in os.environ.items() if k != "EDITQ_FLOWER_BASIC_AUTH"}
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed")
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "EDITQ_FLOWER_BASIC_AUTH" in result.stderr
