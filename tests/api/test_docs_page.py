"""`/docs` in headless Chromium: Swagger UI served by editq itself (no CDN), authorized with an
editq key, sends a multipart edit that the real stack accepts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests import images
from tests.support.stack import PrivateSim, Universe

pytestmark = [pytest.mark.browser, pytest.mark.timeout(170)]


def test_docs_assets_are_served_here(make_stack: Callable[..., Universe]) -> None:
    u = make_stack(workers=0)
    with httpx.Client(base_url=u.api_url) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "cdn." not in page.text
        assert "/docs/assets/swagger-ui-bundle.js" in page.text
        script = client.get("/docs/assets/swagger-ui-bundle.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert client.get("/docs/assets/swagger-ui.css").status_code == 200
        assert client.get("/redoc").status_code == 404
        assert client.get("/docs/assets/..%2F..%2F__init__.py").status_code == 404


def test_docs_authorize_and_send_a_multipart_edit(
    browser: Browser, make_stack: Callable[..., Universe], private_sim: PrivateSim, tmp_path: Path
) -> None:
    u = make_stack(OPENAI_BASE_URL=private_sim.url)
    _, key = u.tenant()
    picture = tmp_path / "photo.png"
    picture.write_bytes(images.scene(256, 256))
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    external: list[str] = []
    page.on(
        "request",
        lambda r: external.append(r.url) if not r.url.startswith((u.api_url, "data:", "blob:")) else None,
    )
    page.goto(u.api_url + "/docs")

    page.locator(".auth-wrapper .authorize").click()
    scheme = page.locator(".modal-ux .auth-container").filter(has_text="ApiKey")
    scheme.locator("input").first.fill(key)
    scheme.locator("button.authorize").click()
    page.locator(".modal-ux button.btn-done").first.click()

    operation = page.locator(".opblock-post").filter(
        has=page.locator('.opblock-summary-path[data-path="/v1/edits"]')
    )
    operation.locator(".opblock-summary").click()
    body = operation.locator(".opblock-section-request-body")
    body.locator("select").first.select_option("multipart/form-data")
    body.locator('tr[data-property-name="image"] input[type="file"]').first.set_input_files(str(picture))
    body.locator('tr[data-property-name="prompt"] input').fill("make it a rainy night")
    body.locator('tr[data-property-name="quality"] select').select_option("low")
    with page.expect_response(
        lambda r: r.url == f"{u.api_url}/v1/edits" and r.request.method == "POST"
    ) as sent:
        operation.locator("button.execute").click()
    answer = sent.value
    assert answer.status == 202, (answer.text(), answer.request.post_data_buffer)
    assert answer.request.headers["authorization"] == f"Bearer {key}"
    job = answer.json()
    expect(operation.locator(".live-responses-table tr.response .response-col_status")).to_contain_text("202")
    assert external == []
    with u.client(key) as client:
        done = u.wait_job(client, job["id"])
    assert done["status"] == "succeeded"
    assert done["prompt"] == "make it a rainy night"
    assert done["options"]["quality"] == "low"
