"""`/docs`: Swagger UI served from this server (the `swagger-ui-py` wheel's copy of
swagger-ui-dist), so the page works where browsers cannot reach a CDN; ReDoc is off for the
same reason (it has no packaged copy)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

#: Where the packaged Swagger UI keeps its script, style and icons.
FOLDER = Path(str(resources.files("swagger_ui") / "static"))
ASSETS = "/docs/assets"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="editq API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        swagger_ui_parameters={"persistAuthorization": True, "tryItOutEnabled": True},
    )
    page.headers["X-Content-Type-Options"] = "nosniff"
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


def assets() -> StaticFiles:
    return StaticFiles(directory=FOLDER)
