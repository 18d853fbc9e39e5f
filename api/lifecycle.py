"""The model situation as the API reports it: in `/readyz`, `GET /v1/models` and the logs."""

from __future__ import annotations

from typing import Any

from editq import lifecycle
from editq.catalogue import Catalogue
from editq.storage import models as model_store
from editq.storage.backend import Backend


def model_report(db: Backend, catalogue: Catalogue) -> dict[str, Any]:
    """Default chain, what the account serves, and models retiring soon."""
    settings = db.settings
    return lifecycle.report(
        catalogue,
        configured_default=settings.default_model,
        aliases=settings.model_aliases,
        availability=model_store.availability(db),
        today=db.clock.today(),
    )
