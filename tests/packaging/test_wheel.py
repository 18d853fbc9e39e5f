"""The runtime wheel: one import root, the data it needs, no benchmarks or tests."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("editq-*.whl")
    return zipfile.ZipFile(built)


def test_one_import_root(wheel: zipfile.ZipFile) -> None:
    top = next(n for n in wheel.namelist() if n.endswith(".dist-info/top_level.txt"))
    assert wheel.read(top).decode().split() == ["editq"]
    roots = {
        name.split("/", 1)[0] for name in wheel.namelist() if not name.split("/", 1)[0].endswith(".dist-info")
    }
    assert roots == {"editq"}


def test_the_runtime_is_inside_and_the_dev_tools_are_not(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for needed in (
        "editq/api/app.py",
        "editq/worker/tasks.py",
        "editq/storage/lua/submit.lua",
        "editq/storage/lua/_lib.lua",
        "editq/data/models.json",
        "editq/ops/launcher.py",
        "editq/ops/sim/app.py",
        "editq/tools/cli.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("editq/ops/bench/", "tests/"))]


#: What `pip install editq` must not bring: the server's packages.
SERVER_ONLY = ("celery", "redis", "boto3", "PIL", "fastapi", "uvicorn", "flower", "pydantic_settings")


@pytest.fixture(scope="module")
def light(wheel: zipfile.ZipFile, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed as `pip install editq` would (no extras)."""
    venv = tmp_path_factory.mktemp("light") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel.filename)]
    done = subprocess.run(install, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return venv


def _run(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(venv), "EDITQ_STATE_DIR": str(venv)}
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.mark.slow
def test_pip_install_editq_gives_the_client_and_the_command_without_the_server(light: Path) -> None:
    python = str(light / "bin" / "python")
    imported = _run(light, python, "-c", "from editq.client import AsyncClient, Client, verify_webhook")
    assert imported.returncode == 0, imported.stderr
    for module in SERVER_ONLY:
        assert _run(light, python, "-c", f"import {module}").returncode == 1, module
    editq = str(light / "bin" / "editq")
    for args in ([], ["status"], ["submit"], ["list"]):
        shown = _run(light, editq, *args, "--help")
        assert shown.returncode == 0, shown.stderr
        assert "usage: editq" in shown.stdout
    unreachable = _run(light, editq, "status", "edit_1", "--api", "http://127.0.0.1:9", "--key", "eq_x")
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("editq: connection_error: "), unreachable.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", [["run"], ["api"], ["tenants", "list"], ["provider", "status"]])
def test_the_server_commands_say_what_to_install(light: Path, command: list[str]) -> None:
    refused = _run(light, str(light / "bin" / "editq"), *command)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "pip install 'editq[server]'" in refused.stderr
