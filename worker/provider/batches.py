"""OpenAI's Files and Batch APIs over httpx, for the economy lane. No retries inside: a step
that fails raises a `ProviderError`, and the batch's poller tries again at its next turn."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import httpx

from editq.batchfile import COMPLETION_WINDOW, ENDPOINT
from editq.settings import Settings
from editq.worker.provider.failures import (
    BadResponse,
    ProviderError,
    ProviderTimeout,
    ProviderUnreachable,
)
from editq.worker.provider.openai import classify

PURPOSE_BATCH = "batch"
#: Purpose of a source image uploaded for a batch line's `file_id` reference: images given to a
#: model as input are `vision` files.
PURPOSE_IMAGE = "vision"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
#: Pages of `GET /batches` searched for a batch created before a crash (newest first).
FIND_PAGES = 5


@dataclass(frozen=True)
class BatchInfo:
    """What the provider says about one batch."""

    id: str
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_api(cls, body: Any) -> BatchInfo:
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise BadResponse("the provider's batch object has no id")
        errors = body.get("errors") or {}
        data = errors.get("data") if isinstance(errors, dict) else None
        metadata = body.get("metadata")
        return cls(
            id=body["id"],
            status=str(body.get("status", "")),
            output_file_id=body.get("output_file_id") or None,
            error_file_id=body.get("error_file_id") or None,
            errors=[e for e in data if isinstance(e, dict)] if isinstance(data, list) else [],
            metadata={str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {},
        )


class BatchClient:
    """`{OPENAI_BASE_URL}/files` and `/batches` with `Authorization: Bearer`."""

    def __init__(self, client: httpx.Client, base_url: str, api_key: str) -> None:
        self.client = client
        self.base = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"}

    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            response = self.client.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"no answer from the provider in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ProviderUnreachable(f"cannot reach the provider: {exc}") from exc
        if response.status_code >= 300:
            if stream:
                response.read()
                response.close()
            raise classify(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        request = self.client.build_request(method, f"{self.base}{path}", headers=self.headers, **kwargs)
        response = self._send(request)
        try:
            return response.json()
        except ValueError:
            raise BadResponse("the provider answered with something other than JSON") from None

    def upload(self, filename: str, data: bytes | IO[bytes], content_type: str, purpose: str) -> str:
        """`POST /files`: the new file's id."""
        body = self._json(
            "POST",
            "/files",
            data={"purpose": purpose},
            files={"file": (filename, data, content_type)},
        )
        file_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(file_id, str):
            raise BadResponse("the provider's file object has no id")
        return file_id

    def create(self, input_file_id: str, metadata: dict[str, str]) -> BatchInfo:
        """`POST /batches` for the image-edit endpoint, with the 24 h window."""
        payload = {
            "input_file_id": input_file_id,
            "endpoint": ENDPOINT,
            "completion_window": COMPLETION_WINDOW,
            "metadata": metadata,
        }
        return BatchInfo.from_api(self._json("POST", "/batches", json=payload))

    def retrieve(self, batch_id: str) -> BatchInfo:
        return BatchInfo.from_api(self._json("GET", f"/batches/{batch_id}"))

    def cancel(self, batch_id: str) -> BatchInfo:
        return BatchInfo.from_api(self._json("POST", f"/batches/{batch_id}/cancel"))

    def find(self, key: str, value: str) -> BatchInfo | None:
        """The most recent batch whose metadata has `key` = `value`, if any."""
        after: str | None = None
        for _ in range(FIND_PAGES):
            params: dict[str, str | int] = {"limit": 100}
            if after:
                params["after"] = after
            page = self._json("GET", "/batches", params=params)
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list) or not data:
                return None
            for item in data:
                found = BatchInfo.from_api(item)
                if found.metadata.get(key) == value:
                    return found
            if not page.get("has_more"):
                return None
            after = str(data[-1].get("id"))
        return None

    @contextlib.contextmanager
    def lines(self, file_id: str) -> Iterator[Iterator[str]]:
        """`GET /files/{id}/content`, line by line as it streams in."""
        request = self.client.build_request(
            "GET", f"{self.base}/files/{file_id}/content", headers=self.headers
        )
        response = self._send(request, stream=True)
        try:
            yield (line for line in response.iter_lines() if line.strip())
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"the file {file_id} stopped arriving ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ProviderUnreachable(f"reading the file {file_id} failed: {exc}") from exc
        finally:
            response.close()

    def delete_file(self, file_id: str) -> None:
        """`DELETE /files/{id}`; a file already gone is fine."""
        request = self.client.build_request("DELETE", f"{self.base}/files/{file_id}", headers=self.headers)
        try:
            self._send(request)
        except ProviderError as exc:
            if exc.status != 404:
                raise


def http_client(settings: Settings) -> httpx.Client:
    """For batch files: input files up to 200 MB go up, output files stream down."""
    return httpx.Client(
        timeout=httpx.Timeout(connect=settings.provider_connect_timeout, read=300.0, write=600.0, pool=30.0),
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        follow_redirects=False,
    )


def build(settings: Settings, client: httpx.Client) -> BatchClient | None:
    """On the economy account (`Settings.economy_account`); None when no account has a batch
    route editq speaks (Azure only)."""
    account = settings.economy_account
    if account is None or account.api_key is None:
        return None
    return BatchClient(client, account.base_url, account.api_key)
