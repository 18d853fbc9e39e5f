"""A small Python client for the editq API (what the `editq` command uses)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

TERMINAL = {"succeeded", "failed", "canceled", "expired"}


class ApiError(Exception):
    """The API refused a request; carries its error envelope."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"{status} {error.get('code')}: {error.get('message')}")
        self.status = status
        self.error = error


class Client:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 60.0) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _json(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                error = response.json().get("error", {})
            except ValueError:
                error = {"code": "http_error", "message": response.text[:300]}
            raise ApiError(response.status_code, error)
        return response.json()

    def submit(
        self,
        images: Iterable[Path],
        prompt: str,
        *,
        mask: Path | None = None,
        options: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        wait: int | None = None,
    ) -> dict[str, Any]:
        paths = list(images)
        name = "image" if len(paths) == 1 else "image[]"
        files = [(name, (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
        if mask is not None:
            files.append(("mask", (mask.name, mask.read_bytes(), "image/png")))
        data = {"prompt": prompt, **{k: str(v) for k, v in (options or {}).items() if v is not None}}
        headers = {}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if wait:
            headers["Prefer"] = f"wait={wait}"
        result: dict[str, Any] = self._json(
            self.http.post("/v1/edits", data=data, files=files, headers=headers)
        )
        return result

    def upload(self, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = self._json(
            self.http.post(
                "/v1/uploads", files={"file": (path.name, path.read_bytes(), "application/octet-stream")}
            )
        )
        return result

    def batch(self, items: list[dict[str, Any]], *, idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: dict[str, Any] = self._json(
            self.http.post("/v1/edits/batch", json={"items": items}, headers=headers)
        )
        return result

    def get(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self.http.get(f"/v1/edits/{job_id}"))
        return result

    def usage(self, **params: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self.http.get("/v1/usage", params=params))
        return result

    def wait(self, job_id: str, *, timeout: float = 600.0, interval: float = 0.5) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["status"] in TERMINAL or time.monotonic() > deadline:
                return job
            time.sleep(interval)

    def download(self, job: dict[str, Any], folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        saved = []
        for index, output in enumerate(job.get("outputs", [])):
            ext = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(
                output["content_type"], "bin"
            )
            url = output["url"]
            response = (
                self.http.get(url) if url.startswith(str(self.http.base_url)) else httpx.get(url, timeout=60)
            )
            if response.status_code >= 400:
                raise ApiError(response.status_code, {"code": "download_failed", "message": url})
            path = folder / f"{job['id']}-{index}.{ext}"
            path.write_bytes(response.content)
            saved.append(path)
        return saved


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False)
