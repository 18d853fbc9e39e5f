"""Where the client finds the API and its key when they are not passed in."""

from __future__ import annotations

from pathlib import Path

import pytest

from editq.client import EditqError
from editq.client.config import resolve


def test_what_is_passed_wins() -> None:
    env = {"EDITQ_API_URL": "http://env:1", "EDITQ_API_KEY": "eq_env"}
    assert resolve("http://given:2/", "eq_given", env) == ("http://given:2", "eq_given")


def test_the_environment_in_order(tmp_path: Path) -> None:
    (tmp_path / "dev-api-key").write_text("eq_file\n")
    env = {"EDITQ_STATE_DIR": str(tmp_path), "EDITQ_API_HOST": "0.0.0.0", "EDITQ_API_PORT": "9"}
    assert resolve(None, None, env) == ("http://0.0.0.0:9", "eq_file")
    env["EDITQ_BOOTSTRAP_API_KEY"] = "eq_boot"
    env["EDITQ_PUBLIC_URL"] = "https://edits.example/"
    assert resolve(None, None, env) == ("https://edits.example", "eq_boot")
    env["EDITQ_API_KEY"] = " eq_key "
    env["EDITQ_API_URL"] = "http://api:8000"
    assert resolve(None, None, env) == ("http://api:8000", "eq_key")


def test_no_key_anywhere_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EditqError) as raised:
        resolve(None, None, {"EDITQ_STATE_DIR": str(tmp_path)})
    assert raised.value.code == "missing_api_key"
    assert "EDITQ_API_KEY" in raised.value.message
