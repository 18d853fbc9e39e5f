"""Named dependencies for route handlers."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request

from editq import logs
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


async def tenant(request: Request, db: DB) -> str:
    """The tenant of the bearer API key."""
    found = await anyio.to_thread.run_sync(tenants.authenticate, db, bearer(request))
    if found is None:
        raise Unauthorized("invalid_api_key", "unknown or revoked API key")
    logs.bind(tenant=found)
    return found


Tenant = Annotated[str, Depends(tenant)]
