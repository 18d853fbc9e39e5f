"""The admin API's door: `EDITQ_ADMIN_API_KEY` as the bearer key, and strict JSON bodies."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Request
from pydantic import BaseModel, ValidationError

from editq.api import inputs, openapi
from editq.api.admin_schemas import AdminBody
from editq.api.deps import DB, AdminKeyScheme, bearer
from editq.api.schemas import ERROR_STATUSES, ErrorEnvelope, errors
from editq.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from editq.storage import tenants

#: Largest admin request body.
BODY_BYTES = 16 * 1024

Body = TypeVar("Body", bound=AdminBody)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


async def admin(request: Request, db: DB, _scheme: AdminKeyScheme) -> None:
    """Let the admin key through: 404 `admin_disabled` while EDITQ_ADMIN_API_KEY is unset, 401
    without a key or with a wrong one, 403 `forbidden` for a tenant's key."""
    configured = db.settings.admin_api_key
    if configured is None:
        raise NotFound("admin_disabled", "the admin API is off; set EDITQ_ADMIN_API_KEY to turn it on")
    key = bearer(request)
    # digests of equal length, so the comparison's time tells nothing about the key
    if hmac.compare_digest(_digest(key), _digest(configured.get_secret_value())):
        return
    if await anyio.to_thread.run_sync(tenants.authenticate, db, key) is not None:
        raise Forbidden("forbidden", "a tenant's API key cannot use the admin API")
    raise Unauthorized("invalid_api_key", "this is not the admin API key")


def refusal(exc: ValidationError, codes: dict[str, str]) -> InvalidRequest:
    """The first problem pydantic found, as a refusal with the field's own code (`codes`)."""
    first = exc.errors()[0]
    loc = [str(part) for part in first["loc"]]
    field = loc[0][:64] if loc else None
    if first["type"] == "extra_forbidden" and len(loc) == 1:
        return InvalidRequest("unknown_parameter", f"unknown field {'.'.join(loc)[:100]!r}", field)
    code = codes.get(field or "", "invalid_parameter")
    return InvalidRequest(code, f"{'.'.join(loc)[:100] or 'body'}: {first['msg']}", field)


def body(model: type[Body]) -> Callable[[Request], Awaitable[Body]]:
    """A dependency reading a JSON object of at most `BODY_BYTES` into `model`."""

    async def read(request: Request) -> Body:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("application/json"):
            raise InvalidRequest("unsupported_content_type", "send application/json", "Content-Type")
        value = await inputs.read_json(request, BODY_BYTES)
        if not isinstance(value, dict):
            raise InvalidRequest("invalid_json", "the body must be a JSON object")
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            raise refusal(exc, model.codes) from None

    return read


#: The codes the admin API's refusals carry, by status (for `/openapi.json`).
CODES = {
    400: "unsupported_content_type invalid_json json_too_deep unknown_parameter unknown_plan "
    "invalid_tenant_name invalid_weight invalid_max_running invalid_budget invalid_plan_name "
    "invalid_default_priority invalid_plan invalid_credit_usd invalid_markup invalid_per_image "
    "invalid_credits invalid_note invalid_idempotency_key",
    409: "tenant_exists plan_exists",
    422: "idempotency_key_reused",
    413: "request_too_large",
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for an admin route: the tenant routes' refusals, 403 and `admin_disabled`."""
    documented_errors = errors(*statuses, codes=CODES)
    documented_errors[401]["description"] = "Missing or wrong admin key: `missing_api_key`, `invalid_api_key`"
    documented_errors[403] = {"model": ErrorEnvelope, "description": "A tenant's API key (`forbidden`)"}
    documented_errors[404] = {
        "model": ErrorEnvelope,
        "description": f"{ERROR_STATUSES[404]}: `tenant_not_found`, `key_not_found`, `plan_not_found`; "
        "`admin_disabled` while EDITQ_ADMIN_API_KEY is unset",
    }
    return documented_errors


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` naming `model` as the JSON request body (read by `body`, not FastAPI); its
    schema joins the document's components (`openapi.install`)."""
    return openapi.request_body(("application/json", openapi.body_model(model)))
