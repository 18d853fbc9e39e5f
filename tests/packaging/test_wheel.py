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
