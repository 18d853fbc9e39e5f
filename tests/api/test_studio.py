"""editq studio driven in headless Chromium (Debian's package) against a real stack."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests import images
from tests.support.stack import PrivateSim, Universe

pytestmark = [pytest.mark.browser, pytest.mark.timeout(170)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def studio_stack(make_stack: Callable[..., Universe], private_sim: PrivateSim) -> tuple[Universe, PrivateSim]:
    return make_stack(OPENAI_BASE_URL=private_sim.url), private_sim


def _watch_console(page: Page) -> list[str]:
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def _open(browser: Browser, u: Universe, key: str, viewport: dict[str, int]) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    problems = _watch_console(page)
    response = page.goto(u.api_url + "/")
    assert response is not None
    assert response.ok
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "img-src 'self' blob: data:" in csp
    assert "unsafe-inline" not in csp
    page.get_by_label("API key", exact=True).fill(key)
    return page, problems


def _paint_stroke(page: Page) -> None:
    canvas = page.locator("#mask-canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] * 0.4
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (0.2 + 0.05 * step), y, steps=2)
    page.mouse.up()
    expect(page.locator("#mask-state")).to_contain_text("painted mask")


def _no_overflow(page: Page, viewport: dict[str, int]) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the page is {width}px wide on a {viewport['width']}px screen"


def test_studio_edits_compares_and_follows(
    browser: Browser, studio_stack: tuple[Universe, PrivateSim], tmp_path: Path
) -> None:
    u, sim = studio_stack
    _, key = u.tenant(max_running=1, budgets={"day": 10_000_000})
    page, problems = _open(browser, u, key, DESKTOP)

    page.get_by_label("Images", exact=True).set_input_files(
        {"name": "scene.png", "mimeType": "image/png", "buffer": images.scene(640, 480)}
    )
    expect(page.locator("#thumbs")).to_contain_text("640\u00d7480")
    _paint_stroke(page)
    page.get_by_label("Prompt", exact=True).fill("make it a snowy night; keep the sun and the field")
    page.get_by_label("Strength", exact=True).select_option("high")
    page.get_by_label("Aspect ratio", exact=True).select_option("16:9")
    expect(page.get_by_label("Model", exact=True)).to_contain_text("gpt-image-1-mini")
    estimate = page.locator("#estimate")
    expect(estimate).to_contain_text("Up to $", timeout=15_000)
    expect(estimate).to_contain_text("1536x1024")
    expect(estimate).to_contain_text("Budget left:")
    assert float(estimate.get_attribute("data-usd") or 0) > 0

    page.get_by_role("button", name="Edit image").click()
    edited = page.get_by_alt_text("Edited image")
    expect(edited).to_be_visible(timeout=60_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('#after'); return i.complete && i.naturalWidth > 0; }"
    )
    width, height = page.evaluate(
        "(i => [i.naturalWidth, i.naturalHeight])(document.querySelector('#after'))"
    )
    assert abs(width / height - 16 / 9) < 0.01, (width, height)
    expect(page.locator("#charged")).to_contain_text("Charged $")
    expect(page.get_by_role("link", name="Download 1")).to_be_visible()

    with u.client(key) as client:
        jobs = client.get("/v1/edits").json()["data"]
    assert len(jobs) == 1
    job = jobs[0]
    assert job["status"] == "succeeded"
    assert job["options"]["aspect_ratio"] == "16:9"
    assert job["options"]["strength"] == "high"
    assert job["mask"] is not None
    assert (job["mask"]["width"], job["mask"]["height"]) == (640, 480)
    charged = re.search(r"Charged \$([0-9.]+)", page.locator("#charged").inner_text())
    assert charged is not None
    assert float(job["cost"]["actual_usd"]) > 0
    assert abs(float(charged.group(1)) - float(job["cost"]["actual_usd"])) < 0.005
    history = page.locator(f"#job-{job['id']}")
    expect(history).to_contain_text("succeeded")
    expect(history.get_by_role("img")).to_be_visible()
    page.get_by_label("Before / after", exact=True).fill("20")
    page.screenshot(path=tmp_path / "studio-desktop.png", full_page=True)

    # A phone: one slow job runs, the next waits (max_running=1) and is canceled from the history.
    sim(latency_min=30, latency_max=30)
    phone, phone_problems = _open(browser, u, key, PHONE)
    with u.client(key) as client:
        image_id = client.post("/v1/uploads", files={"file": ("a.png", images.scene(), "image/png")}).json()[
            "id"
        ]
        slow = client.post("/v1/edits", json={"prompt": "rain", "image_ids": [image_id]}).json()
        u.wait_job(client, slow["id"], until=("running",))
    phone.get_by_label("Images", exact=True).set_input_files(
        {"name": "phone.jpg", "mimeType": "image/jpeg", "buffer": images.scene(480, 640, "JPEG")}
    )
    phone.get_by_label("Prompt", exact=True).fill("vintage film look; keep everything else")
    phone.get_by_label("Aspect ratio", exact=True).select_option("custom")
    phone.get_by_label("Custom W:H", exact=True).fill("4:5")
    expect(phone.locator("#estimate")).to_contain_text("Up to $", timeout=15_000)
    phone.get_by_role("button", name="Edit image").click()
    expect(phone.locator("#status")).to_contain_text("queued", timeout=15_000)
    expect(phone.locator("#status")).to_contain_text("next in line")
    phone.get_by_role("button", name="Refresh").click()
    with u.client(key) as client:
        queued = client.get("/v1/edits", params={"status": "queued"}).json()["data"]
        assert len(queued) == 1
        item = phone.locator(f"#job-{queued[0]['id']}")
        expect(item).to_contain_text("queued")
        _no_overflow(phone, PHONE)
        phone.screenshot(path=tmp_path / "studio-phone.png", full_page=True)
        item.get_by_role("button", name="Cancel").click()
        expect(item).to_contain_text("canceled")
        expect(phone.locator("#status")).to_contain_text("canceled")
        assert client.get(f"/v1/edits/{queued[0]['id']}").json()["status"] == "canceled"
        client.post(f"/v1/edits/{slow['id']}/cancel")

    assert problems == []
    assert phone_problems == []

    # Refusals show their message and code (the browser logs the 400s it received).
    phone.get_by_label("Custom W:H", exact=True).fill("9:1")
    expect(phone.locator("#estimate")).to_contain_text("(invalid_aspect_ratio)", timeout=15_000)
    phone.get_by_role("button", name="Edit image").click()
    expect(phone.get_by_role("alert")).to_contain_text("(invalid_aspect_ratio)")


def test_studio_page_is_served_with_its_headers(stack: Universe) -> None:
    page = httpx.get(stack.api_url + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/studio/app.js">' in page.text
    for asset, kind in (("app.js", "javascript"), ("api.js", "javascript"), ("studio.css", "text/css")):
        served = httpx.get(f"{stack.api_url}/studio/{asset}", timeout=10)
        assert served.status_code == 200
        assert kind in served.headers["content-type"]
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "https://" not in served.text
        assert "http://" not in served.text
