"""Headless Chromium (Debian's package) for the browser tests of this folder."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"


def _install_chromium() -> None:
    """Debian's chromium, when missing and allowed (`make test` installs it beforehand)."""
    if Path(CHROMIUM).exists() or shutil.which("apt-get") is None:
        return
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
        check=False,
        capture_output=True,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Closed with this module: Playwright's sync API keeps an event loop running meanwhile."""
    _install_chromium()
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (make test does, as root)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()
