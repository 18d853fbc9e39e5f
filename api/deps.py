"""Named dependencies for route handlers."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from editq import logs
from editq.api import openapi
from editq.api.guard import UploadSlots
from editq.catalogue import Catalogue
from editq.errors import Unauthorized
from editq.storage import tenants
from editq.storage.backend import Backend
from editq.storage.events import EventFeed


def backend(request: Request) -> Backend:
    db: Backend = request.app.state.backend
    return db


def catalogue(request: Request) -> Catalogue:
    found: Catalogue = request.app.state.catalogue
    return found


def event_feed(request: Request) -> EventFeed:
    feed: EventFeed = request.app.state.event_feed
    return feed


def upload_slots(request: Request) -> UploadSlots:
    slots: UploadSlots = request.app.state.upload_slots
    return slots


#: Headers the routes read. `Content-Type` is read, not documented (OpenAPI describes it by the
#: request body); the others document their form without FastAPI checking it, so a bad value
#: gets the route's own error code.
ContentType = Annotated[str, Header(include_in_schema=False)]
IdempotencyKey = Annotated[str | None, Header(**openapi.IDEMPOTENCY_KEY)]
CancelAfter = Annotated[str | None, Header(**openapi.CANCEL_AFTER)]
PreferWait = Annotated[str | None, Header(**openapi.PREFER)]
DB = Annotated[Backend, Depends(backend)]
Models = Annotated[Catalogue, Depends(catalogue)]
Events = Annotated[EventFeed, Depends(event_feed)]
Uploads = Annotated[UploadSlots, Depends(upload_slots)]


def bearer(request: Request) -> str:
    """The key of `Authorization: Bearer <key>`, or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if not header:
        raise Unauthorized("missing_api_key", "send Authorization: Bearer <API key>")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("invalid_api_key", "Authorization must be 'Bearer <API key>'")
    return key.strip()


#: Declare the schemes in `/openapi.json` (so `/docs` can authorize); `bearer` reads the header
#: itself, to answer each refusal with its own code.
API_KEY = HTTPBearer(
    scheme_name="ApiKey",
    bearerFormat="editq API key",
    description="An editq API key (`editq keys create TENANT`): `Authorization: Bearer <key>`.",
    auto_error=False,
)
ADMIN_KEY = HTTPBearer(
    scheme_name="AdminKey",
    bearerFormat="EDITQ_ADMIN_API_KEY",
    description="The admin key (`EDITQ_ADMIN_API_KEY`): `Authorization: Bearer <key>`.",
    auto_error=False,
)
ApiKeyScheme = Annotated[HTTPAuthorizationCredentials | None, Security(API_KEY)]
AdminKeyScheme = Annotated[HTTPAuthorizationCredentials | None, Security(ADMIN_KEY)]


async def tenant(request: Request, db: DB, _scheme: ApiKeyScheme) -> str:
    """The tenant of the bearer API key."""
    found = await anyio.to_thread.run_sync(tenants.authenticate, db, bearer(request))
    if found is None:
        raise Unauthorized("invalid_api_key", "unknown or revoked API key")
    logs.bind(tenant=found)
    return found


Tenant = Annotated[str, Depends(tenant)]
