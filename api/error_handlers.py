"""Every refusal the API sends, mapped in one place to `{"error": {"code", "message", "param"}}`
(OpenAI's `{"error": {"message", "type", "param", "code"}}` on the OpenAI-compatible routes)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from editq import logs
from editq.api.compat_errors import Refusal
from editq.errors import EditqError, RequestTimeout, TooManyRequests, Unavailable
from editq.storage.errors import StorageError, StorageUnavailable

log = logging.getLogger("editq.api")

_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


def refusal(exc: EditqError) -> Refusal:
    headers = {}
    if isinstance(exc, Unavailable | TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, RequestTimeout):
        headers["Connection"] = "close"
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="editq"'
    return Refusal(exc.status, exc.code, exc.message, exc.param, dict(exc.extra), headers)


def answer(request: Request, refused: Refusal, *, quiet: bool = False) -> JSONResponse:
    """The refusal in the shape the path speaks, logged (unless `quiet`)."""
    if not quiet:
        _refused(request, refused.status, refused.code)
    status, body, headers = refused.for_path(request.url.path)
    return JSONResponse(body, status_code=status, headers=headers)


def _refused(request: Request, status: int, code: str) -> None:
    route = request.scope.get("route")
    logs.event(
        log,
        "request.refused",
        logging.WARNING if status >= 500 else logging.INFO,
        status=status,
        code=code,
        method=request.method,
        route=getattr(route, "path", "unmatched"),
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(EditqError)
    async def editq_error(request: Request, exc: EditqError) -> JSONResponse:
        return answer(request, refusal(exc))

    @app.exception_handler(StorageUnavailable)
    async def storage_down(request: Request, exc: StorageUnavailable) -> JSONResponse:
        log.warning("storage unavailable: %s", exc)
        message = "a backing service is unavailable; retry shortly"
        return answer(request, Refusal(503, "storage_unavailable", message, headers={"Retry-After": "2"}))

    @app.exception_handler(StorageError)
    async def storage_error(request: Request, exc: StorageError) -> JSONResponse:
        log.error("storage error: %s", exc)
        return answer(request, Refusal(503, "storage_error", "storage refused the operation; retry shortly"))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
        param = ".".join(loc) or None
        message = f"{param or 'request'}: {first.get('msg', 'invalid')}"
        return answer(request, Refusal(400, "invalid_parameter", message, param))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return answer(request, Refusal(exc.status_code, code, str(exc.detail)), quiet=True)
