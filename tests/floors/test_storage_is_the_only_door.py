"""Only storage touches the Redis client and the Lua scripts; everything else calls storage."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RAW = re.compile(r"\.(redis|scripts)\.")
LINKED = ("editq/api/", "editq/worker/", "editq/storage/", "editq/ops/")


def test_no_raw_redis_or_script_calls_outside_storage() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("api", "worker", "editq")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if not path.relative_to(ROOT)
        .as_posix()
        .startswith(("editq/api/", "editq/worker/", "editq/storage/", "editq/ops/"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if RAW.search(line)
    ]
    assert offenders == []
