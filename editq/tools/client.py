"""The client moved to `editq.client`; these names stay for code written against this module."""

from __future__ import annotations

import json
from typing import Any

from editq.client import TERMINAL, Client, EditqError

#: The former name of `EditqError`.
ApiError = EditqError

__all__ = ["TERMINAL", "ApiError", "Client", "dumps"]


def dumps(value: Any) -> str:
    """JSON for people: what the admin commands print."""
    return json.dumps(value, indent=2, sort_keys=False)
