"""The whole pipeline on real parts: submit over HTTP, sources in S3, Redis and Celery, the
simulator as the model, outputs back by URL."""

from __future__ import annotations

import httpx

from tests import images
from tests.support.stack import Universe


def _submit(client: httpx.Client, data: dict[str, str] | None = None) -> httpx.Response:
    files = {"image": ("src.png", images.scene(), "image/png")}
    return client.post("/v1/edits", data={"prompt": "make it a pencil sketch", **(data or {})}, files=files)


def test_submit_runs_and_returns_an_edited_image(stack: Universe, client: httpx.Client) -> None:
    response = _submit(client)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued"
    assert response.headers["location"] == f"/v1/edits/{job['id']}"
    assert job["cost"]["estimated_usd"] is not None

    done = stack.wait_job(client, job["id"])
    assert done["status"] == "succeeded", done
    assert done["started_at"]
    assert done["finished_at"]
    [output] = done["outputs"]
    download = client.get(output["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    result = images.decode(download.content)
    assert result.size == (output["width"], output["height"])
    assert images.mean_difference(images.decode(images.scene()), result) > 20
    assert done["cost"]["actual_usd"] is not None
    assert float(done["cost"]["actual_usd"]) <= float(done["cost"]["estimated_usd"])
    assert done["cost"]["usage"]["input_tokens_details"]["image_tokens"] > 0


def test_several_images_and_a_mask(stack: Universe, client: httpx.Client) -> None:
    files = [
        ("image[]", ("a.png", images.scene(), "image/png")),
        ("image[]", ("b.jpg", images.scene(fmt="JPEG"), "image/jpeg")),
        ("mask", ("m.png", images.mask(), "image/png")),
    ]
    response = client.post(
        "/v1/edits", data={"prompt": "make it nighttime", "size": "1024x1024"}, files=files
    )
    assert response.status_code == 202, response.text
    done = stack.wait_job(client, response.json()["id"])
    assert done["status"] == "succeeded", done
    assert len(done["sources"]) == 2
    assert done["mask"]["width"] == 640
    edited = images.decode(client.get(done["outputs"][0]["url"]).content)
    source = images.cover(images.decode(images.scene()), edited.size)
    # the mask's right half is opaque: kept as it was; the left half is transparent: edited
    left = (0, 0, edited.width // 2 - 40, edited.height)
    right = (edited.width // 2 + 40, 0, edited.width, edited.height)
    assert images.mean_difference(source.crop(right), edited.crop(right)) < 3
    assert images.mean_difference(source.crop(left), edited.crop(left)) > 30


def test_sources_are_content_addressed_per_tenant(
    stack: Universe, client: httpx.Client, tenant: tuple[str, str]
) -> None:
    first = _submit(client).json()
    second = _submit(client, {"prompt": "make it rainy"}).json()
    assert first["sources"][0]["id"] == second["sources"][0]["id"]
    keys = stack.db.objects.list_keys(f"t/{tenant[0]}/src/")
    assert keys == [f"t/{tenant[0]}/src/{first['sources'][0]['id'][4:]}"]


def test_list_is_newest_first_and_paginates(stack: Universe, client: httpx.Client) -> None:
    ids = [_submit(client).json()["id"] for _ in range(5)]
    page = client.get("/v1/edits", params={"limit": 2}).json()
    assert [j["id"] for j in page["data"]] == ids[::-1][:2]
    assert page["has_more"]
    seen = [j["id"] for j in page["data"]]
    while page["next_cursor"]:
        page = client.get("/v1/edits", params={"limit": 2, "cursor": page["next_cursor"]}).json()
        seen += [j["id"] for j in page["data"]]
    assert seen == ids[::-1]
    for job_id in ids:
        stack.wait_job(client, job_id)
    done = client.get("/v1/edits", params={"status": "succeeded", "limit": 50}).json()
    assert {j["id"] for j in done["data"]} == set(ids)
    assert client.get("/v1/edits", params={"cursor": "garbage"}).json()["error"]["code"] == "invalid_cursor"


def test_another_tenants_job_is_not_found(stack: Universe, client: httpx.Client) -> None:
    job = _submit(client).json()
    done = stack.wait_job(client, job["id"])
    _, other_key = stack.tenant()
    with stack.client(other_key) as other:
        for response in (
            other.get(f"/v1/edits/{job['id']}"),
            other.post(f"/v1/edits/{job['id']}/cancel"),
            other.get(f"/v1/edits/{job['id']}/outputs/0"),
            other.get(f"/v1/edits/{job['id']}/events"),
            other.get(f"/v1/edits/{job['id']}/deliveries"),
        ):
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "job_not_found"
        assert other.get("/v1/edits/edit_doesnotexist").json()["error"]["code"] == "job_not_found"
    assert done["status"] == "succeeded"


def test_keys_are_checked(stack: Universe) -> None:
    with httpx.Client(base_url=stack.api_url) as anonymous:
        assert anonymous.get("/v1/edits").json()["error"]["code"] == "missing_api_key"
        wrong = anonymous.get("/v1/edits", headers={"Authorization": "Bearer eq_nope"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_api_key"
        assert wrong.headers["www-authenticate"].startswith("Bearer")


def test_health_and_readiness(stack: Universe) -> None:
    assert httpx.get(f"{stack.api_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{stack.api_url}/readyz").json()
    assert ready["status"] == "ok"
    assert ready["checks"]["redis"] == "ok"
    assert ready["checks"]["s3"] == "ok"
    assert ready["checks"]["workers"] >= 2
    metrics = httpx.get(f"{stack.api_url}/metrics").text
    assert "editq_inflight_calls" in metrics
    assert "editq_http_requests_total" in metrics
