"""Where the client finds the API and its key when they are not passed in.

The client is installed without the server's settings (`editq.settings` needs pydantic-settings,
a server dependency), so it reads its few variables here, once per client:

- the URL: `EDITQ_API_URL`, else `EDITQ_PUBLIC_URL`, else `http://EDITQ_API_HOST:EDITQ_API_PORT`
  (the API's own defaults: 127.0.0.1 and 8000);
- the key: `EDITQ_API_KEY`, else `EDITQ_BOOTSTRAP_API_KEY`, else the file `dev-api-key` that
  `make run` writes in `EDITQ_STATE_DIR` (`.editq`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from editq.client.errors import EditqError


def api_url(env: Mapping[str, str]) -> str:
    url = env.get("EDITQ_API_URL") or env.get("EDITQ_PUBLIC_URL")
    if not url:
        url = f"http://{env.get('EDITQ_API_HOST') or '127.0.0.1'}:{env.get('EDITQ_API_PORT') or '8000'}"
    return url.rstrip("/")


def api_key(env: Mapping[str, str]) -> str | None:
    key = env.get("EDITQ_API_KEY") or env.get("EDITQ_BOOTSTRAP_API_KEY")
    if key:
        return key.strip()
    local = Path(env.get("EDITQ_STATE_DIR") or ".editq") / "dev-api-key"
    try:
        return local.read_text().strip() or None
    except OSError:
        return None


def resolve(url: str | None, key: str | None, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The API's base URL and key: as given, else from the environment (module docstring)."""
    found = os.environ if env is None else env
    key = key or api_key(found)
    if not key:
        raise EditqError(
            "no API key: pass api_key or set EDITQ_API_KEY (`make run` writes .editq/dev-api-key)",
            code="missing_api_key",
        )
    return (url or api_url(found)).rstrip("/"), key
