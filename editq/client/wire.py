"""What both transports do the same way with httpx: a `Request` as httpx's arguments, an httpx
response as a `Reply`, an httpx failure as `ConnectionFailed`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from editq import __version__
from editq.client.errors import ConnectionFailed
from editq.client.protocol import EventReader, Reply, Request

#: Connection timeout of every request (s).
CONNECT_TIMEOUT = 10.0
#: Longest quiet spell on an event stream before it counts as dropped (the API sends a comment
#: every 15 s).
STREAM_QUIET = 30.0
USER_AGENT = f"editq-client/{__version__}"


def timeout(seconds: float, read: float | None = None) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT), read=read or seconds)


def arguments(request: Request, auth: Mapping[str, str], seconds: float) -> dict[str, Any]:
    """Keyword arguments of `httpx.Client.request` (and the async one) for `request`."""
    headers = {**request.headers, **(auth if request.authorized else {})}
    return {
        "method": request.method,
        "url": request.url,
        "params": dict(request.params) or None,
        "headers": headers,
        "json": request.json,
        "data": dict(request.data) if request.data is not None else None,
        "files": request.files,
        "timeout": timeout(seconds, request.read_timeout),
    }


def stream_arguments(
    url: str, auth: Mapping[str, str], seconds: float, reader: EventReader
) -> dict[str, Any]:
    """Keyword arguments of `httpx.Client.stream` for a job's event stream."""
    return {
        "method": "GET",
        "url": url,
        "headers": {**auth, "Accept": "text/event-stream"},
        "timeout": timeout(seconds, reader.read_timeout(STREAM_QUIET)),
    }


def reply(response: httpx.Response) -> Reply:
    return Reply(response.status_code, response.headers, response.content)


def failure(exc: httpx.HTTPError, request: Request) -> ConnectionFailed:
    code = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
    return ConnectionFailed(f"{request.method} {request.url}: {str(exc) or type(exc).__name__}", code=code)
