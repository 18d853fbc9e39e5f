"""`editq run` started as a user starts it, on private ports, with a private state folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from editq.ops import launcher


def free_ports() -> dict[str, int]:
    return {name: launcher.free_port() for name in ("api", "flower", "redis", "s3", "sim")}


def start(tmp_path: Path, ports: dict[str, int], **env: str) -> subprocess.Popen[bytes]:
    """`editq run` in a process group of its own, its output in `tmp_path/run.log`; none of the
    test session's EDITQ_, OPENAI_ or AWS_ variables reach it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EDITQ_", "OPENAI_", "AWS_"))}
    clean.update(
        EDITQ_STATE_DIR=str(tmp_path / "state"),
        EDITQ_PROBE_DIR=str(tmp_path / "probe"),
        EDITQ_API_PORT=str(ports["api"]),
        EDITQ_FLOWER_PORT=str(ports["flower"]),
        EDITQ_LOCAL_REDIS_PORT=str(ports["redis"]),
        EDITQ_LOCAL_S3_PORT=str(ports["s3"]),
        EDITQ_LOCAL_SIM_PORT=str(ports["sim"]),
        EDITQ_WORKER_CONCURRENCY="4",
        **env,
    )
    with (tmp_path / "run.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "editq.tools.cli", "run"],
            env=clean,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a test can signal its whole group, as a terminal does
        )
