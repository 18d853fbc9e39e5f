"""The `editq` client commands against the real stack: tables for people, `--json` unchanged from
the API, one-line errors with their code, progress as plain lines in a pipe and as a bar with an
ETA in a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from editq.tools.cli import main
from editq.tools.commands.jobs import created
from tests import images
from tests.support.stack import Universe

ANSI = "\x1b["


class Cli:
    """Runs `editq` in this process against one API with one key; keeps what it printed."""

    def __init__(self, capsys: pytest.CaptureFixture[str], url: str, key: str) -> None:
        self.capsys, self.url, self.key = capsys, url, key

    def __call__(self, *args: str, status: int = 0) -> tuple[str, str]:
        code = main([*args, "--api", self.url, "--key", self.key])
        out, err = self.capsys.readouterr()
        assert code == status, f"exit {code}\n{out}\n{err}"
        assert ANSI not in out + err
        return out, err

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json")[0])


@pytest.fixture
def cli(
    stack: Universe,
    tenant: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    monkeypatch.delenv("COLUMNS", raising=False)  # a pipe's width, whatever the test runner set
    return Cli(capsys, stack.api_url, tenant[1])


def test_submit_status_download_estimate_and_usage(
    cli: Cli, stack: Universe, tenant: tuple[str, str], photo: Path, tmp_path: Path
) -> None:
    out, _ = cli("estimate", str(photo), "--prompt", "make it a pencil sketch", "--strength", "low")
    assert "Estimate" in out
    assert "gpt-image-1-mini" in out
    estimate = cli.json("estimate", str(photo), "--prompt", "make it a pencil sketch", "--strength", "low")
    assert estimate["object"] == "edit.estimate"

    out, _ = cli(
        "submit", str(photo), "--prompt", "make it a pencil sketch", "--wait", "--out", str(tmp_path / "a")
    )
    assert "succeeded" in out
    [saved] = (tmp_path / "a").glob("*.png")
    assert str(saved) in out
    job = cli.json("submit", str(photo), "--prompt", "night", "--metadata", '{"sku": "A1"}', "--wait")
    assert (job["status"], job["metadata"]) == ("succeeded", {"sku": "A1"})

    with stack.client(tenant[1]) as http:
        assert cli.json("status", job["id"]) == http.get(f"/v1/edits/{job['id']}").json()
        out, _ = cli("status", job["id"])
        assert job["id"] in out
        assert "output 0" in out
        assert "succeeded" in out

        out, _ = cli("download", job["id"], "--out", str(tmp_path / "b"))
        assert Path(out.strip()).read_bytes() == http.get(job["outputs"][0]["url"]).content
        _, err = cli("download", job["id"], "--out", str(photo), status=1)  # a file, not a folder
        assert err == f"editq: File exists: {photo}\n"

        out, _ = cli("usage", "--group-by", "model")
        assert "Budgets" in out
        assert "gpt-image-1-mini" in out
        assert cli.json("usage", "--group-by", "model") == http.get("/v1/usage?group_by=model").json()


def test_list_filters_and_pages(cli: Cli, stack: Universe, tenant: tuple[str, str], photo: Path) -> None:
    first = cli.json("submit", str(photo), "--prompt", "rain", "--wait")
    second = cli.json("submit", str(photo), "--prompt", "rain", "--no-reuse", "--wait")
    out, err = cli("list", "--limit", "1")
    assert second["id"] in out
    assert first["id"] not in out
    assert "editq list --cursor" in err
    cursor = err.split("--cursor ")[1].strip()
    assert first["id"] in cli("list", "--cursor", cursor)[0]
    with stack.client(tenant[1]) as http:
        assert cli.json("list") == http.get("/v1/edits", params={"limit": 20}).json()
    # the stack's clock is pinned (EDITQ_CLOCK_OFFSET), so ages are counted generously here
    assert len(cli.json("list", "--status", "succeeded", "--since", "3650d")["data"]) == 2
    assert [j["id"] for j in cli.json("list", "--since", first["created_at"])["data"]] == [second["id"]]
    assert [j["id"] for j in cli.json("list", "--until", second["created_at"])["data"]] == [first["id"]]
    assert cli.json("list", "--status", "failed,canceled")["data"] == []
    assert cli.json("list", "--since", "2099-01-01")["data"] == []
    _, err = cli("list", "--limit", "0", status=1)
    assert err == "editq: --limit is 1 to 200\n"
    _, err = cli("list", "--since", "yesterday", status=1)
    assert err.startswith("editq: 400 invalid_parameter: created_after")


def test_cancel(idle: Universe, photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, key = idle.tenant()
    cli = Cli(capsys, idle.api_url, key)
    queued = cli.json("submit", str(photo), "--prompt", "sketch")
    assert queued["status"] == "queued"
    out, _ = cli("cancel", queued["id"])
    assert "canceled" in out
    _, err = cli("cancel", queued["id"], status=1)
    assert err == f"editq: {queued['id']}: 409 job_finished: the job already ended (canceled)\n"
    again = cli.json("submit", str(photo), "--prompt", "sketch", "--no-reuse")
    assert cli.json("cancel", again["id"])["status"] == "canceled"
    _, err = cli("download", again["id"], status=1)
    assert "job_not_succeeded" in err


def test_errors_are_one_line_with_their_code(cli: Cli, photo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (("status", "edit_nope"), "404 job_not_found: "),
        (("submit", str(photo), "--prompt", "x", "--n", "11"), "400 invalid_n: "),
        (("submit", str(photo), "--prompt", "x", "--metadata", "{nope"), "--metadata is not JSON"),
        (("submit", str(tmp_path / "missing.png"), "--prompt", "x"), "no such file or folder"),
        (("estimate", str(tmp_path), "--prompt", "x"), "not a folder"),
        (("submit", str(empty), "--prompt", "x"), "no images found"),
    ]
    for args, expected in cases:
        _, err = cli(*args, status=1)
        assert err.startswith("editq: ")
        assert expected in err
        assert err.count("\n") == 1, err
    # an API that cannot be reached: tests/packaging (the command installed without the server)


def test_a_folder_is_a_batch_with_progress_lines_in_a_pipe(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(images.scene(200 + i, 150))
    (folder / "notes.txt").write_text("not an image")
    out, err = cli(
        "submit", str(folder), "--prompt", "black and white", "--wait", "--out", str(tmp_path / "out")
    )
    assert out.count(" succeeded ") == 3
    assert "uploading: 3/3" in err
    assert "editing: 3/3" in err
    assert len(list((tmp_path / "out").glob("*.png"))) == 3
    lines = cli("submit", str(folder), "--prompt", "vintage film", "--json")[0].splitlines()
    [answer] = [json.loads(line) for line in lines]
    assert (answer["object"], answer["accepted"]) == ("batch", 3)


def _in_a_terminal(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Runs `editq` with a pseudo-terminal as stdout and stderr; its exit status and output."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "editq.tools.cli", *args], stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the command has exited
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")


def test_a_folder_in_a_terminal_shows_a_bar_with_an_eta(
    stack: Universe, tenant: tuple[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(2):
        (folder / f"{i}.png").write_bytes(images.scene(180 + i, 120))
    env = {**stack.env, "EDITQ_API_URL": stack.api_url, "EDITQ_API_KEY": tenant[1], "COLUMNS": "120"}
    status, output = _in_a_terminal(["submit", str(folder), "--prompt", "rain", "--wait"], env)
    assert status == 0, output
    assert ANSI in output
    assert "editing" in output
    assert "eta" in output
    assert "2/2" in output
    assert "uploading: " not in output  # the plain lines are for pipes


def test_ages_become_times_and_other_values_go_as_given() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert created("90m", now) == "2026-11-26T10:30:00.000Z"
    assert created("2d", now) == "2026-11-24T12:00:00.000Z"
    assert created(" 2026-11-01 ", now) == "2026-11-01"
    assert created("1764000000", now) == "1764000000"
    assert created(None, now) is None


def test_each_client_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("submit", "estimate", "status", "list", "cancel", "download", "usage"):
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        assert "--api" in capsys.readouterr().out
