"""docker-compose.yml is valid and runs the same stack (checked with `docker-compose config`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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
