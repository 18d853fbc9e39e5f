"""A client of the admin API (`/v1/admin/*`), for `editq tenants` and `editq keys --api`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from editq.client.errors import NotFound, from_answer


def _segment(text: str) -> str:
    return quote(text, safe="")


class AdminClient:
    """Speaks to `/v1/admin/*` with the admin API key as its bearer key; refusals raise the
    client's errors (`editq.client.errors`)."""

    def __init__(self, base_url: str, admin_key: str, *, timeout: float = 60.0) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def _json(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise from_answer(response.status_code, response.content, response.headers)
        return response.json()

    def create_tenant(self, name: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._json(
            self.http.post("/v1/admin/tenants", json={"name": name, **fields})
        )
        return result

    def tenants(self, page: int = 100) -> Iterator[dict[str, Any]]:
        """Every tenant, by name, a page at a time."""
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": page, **({"after": after} if after else {})}
            answer = self._json(self.http.get("/v1/admin/tenants", params=params))
            yield from answer["data"]
            if not answer["has_more"] or not answer["data"]:
                return
            after = answer["data"][-1]["name"]

    def tenant(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self.http.get(f"/v1/admin/tenants/{_segment(name)}"))
        return result

    def update_tenant(self, name: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._json(
            self.http.patch(f"/v1/admin/tenants/{_segment(name)}", json=fields)
        )
        return result

    def create_key(self, tenant: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self.http.post(f"/v1/admin/tenants/{_segment(tenant)}/keys"))
        return result

    def keys(self, tenant: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json(
            self.http.get(f"/v1/admin/tenants/{_segment(tenant)}/keys")
        )["data"]
        return result

    def revoke_key(self, tenant: str, key_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json(
            self.http.delete(f"/v1/admin/tenants/{_segment(tenant)}/keys/{_segment(key_id)}")
        )
        return result

    def top_up(
        self, tenant: str, credits: int, note: str = "", *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Add credits; with `idempotency_key`, a repeat of the same top-up adds nothing."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: dict[str, Any] = self._json(
            self.http.post(
                f"/v1/admin/tenants/{_segment(tenant)}/credits",
                json={"credits": credits, "note": note},
                headers=headers,
            )
        )
        return result

    def create_plan(self, name: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self.http.post("/v1/admin/plans", json={"name": name, **fields}))
        return result

    def plans(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json(self.http.get("/v1/admin/plans"))["data"]
        return result

    def plan(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json(self.http.get(f"/v1/admin/plans/{_segment(name)}"))
        return result

    def find_key(self, key_id: str) -> str:
        """The tenant holding key `key_id`."""
        for tenant in self.tenants():
            if any(k["id"] == key_id for k in self.keys(tenant["name"])):
                return str(tenant["name"])
        raise NotFound(f"no tenant has a key {key_id!r}", code="key_not_found", status=404)
