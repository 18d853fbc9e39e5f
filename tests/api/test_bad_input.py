"""Bad input gets a specific error code and leaves nothing behind: no S3 object, no job, no
queue entry, no idempotency record, no reservation."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from tests import images
from tests.support.stack import Universe

PNG = ("src.png", images.scene(), "image/png")


def _bomb() -> bytes:
    """A valid PNG header claiming 30000x30000 pixels with a tiny, compressed body."""
    out = io.BytesIO()
    Image.new("1", (30000, 30000)).save(out, format="PNG")
    return out.getvalue()


def _truncated() -> bytes:
    data = images.scene(fmt="JPEG")
    return data[: len(data) // 2]


def _corrupt_png() -> bytes:
    data = bytearray(images.scene())
    for i in range(200, 260):
        data[i] ^= 0xFF
    return bytes(data)


def _heic() -> bytes:
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    return out.getvalue()


def _mask_jpeg() -> bytes:
    return images.scene(fmt="JPEG")


CASES: list[tuple[str, dict[str, Any], Any, int, str]] = [
    (
        "not an image",
        {"prompt": "x"},
        [("image", ("a.png", b"hello, not an image", "image/png"))],
        400,
        "invalid_image",
    ),
    ("empty file", {"prompt": "x"}, [("image", ("a.png", b"", "image/png"))], 400, "image_empty"),
    (
        "truncated jpeg",
        {"prompt": "x"},
        [("image", ("a.jpg", _truncated(), "image/jpeg"))],
        400,
        "image_truncated",
    ),
    (
        "corrupt png",
        {"prompt": "x"},
        [("image", ("a.png", _corrupt_png(), "image/png"))],
        400,
        "image_corrupt",
    ),
    (
        "decompression bomb",
        {"prompt": "x"},
        [("image", ("a.png", _bomb(), "image/png"))],
        400,
        "image_too_many_pixels",
    ),
    (
        "heic",
        {"prompt": "x"},
        [("image", ("a.heic", _heic(), "image/heic"))],
        415,
        "unsupported_image_format",
    ),
    (
        "animated gif",
        {"prompt": "x"},
        [("image", ("a.gif", _animated_gif(), "image/gif"))],
        415,
        "animated_image",
    ),
    ("no image", {"prompt": "x"}, [("mask", ("m.png", images.mask(), "image/png"))], 400, "image_missing"),
    (
        "only an empty file input",
        {"prompt": "x", "webhook_url": ""},
        [("image", ("blob", b"", "application/octet-stream")), ("mask", ("blob", b"", "image/png"))],
        400,
        "image_missing",
    ),
    (
        "empty prompt field",
        {"prompt": ""},
        [("image", ("a.png", images.scene(), "image/png"))],
        400,
        "prompt_missing",
    ),
    ("17 images", {"prompt": "x"}, [("image[]", PNG)] * 17, 400, "too_many_images"),
    ("no prompt", {}, [("image", PNG)], 400, "prompt_missing"),
    ("prompt over the limit", {"prompt": "a" * 32001}, [("image", PNG)], 400, "prompt_too_long"),
    ("unknown field", {"prompt": "x", "temperature": "1"}, [("image", PNG)], 400, "unknown_parameter"),
    ("unknown file field", {"prompt": "x"}, [("image", PNG), ("photo", PNG)], 400, "unknown_parameter"),
    (
        "mask not png",
        {"prompt": "x"},
        [("image", PNG), ("mask", ("m.jpg", _mask_jpeg(), "image/jpeg"))],
        400,
        "mask_not_png",
    ),
    (
        "mask without alpha",
        {"prompt": "x"},
        [("image", PNG), ("mask", ("m.png", images.mask(alpha=False), "image/png"))],
        400,
        "mask_without_alpha",
    ),
    (
        "mask size mismatch",
        {"prompt": "x"},
        [("image", PNG), ("mask", ("m.png", images.mask(320, 240), "image/png"))],
        400,
        "mask_size_mismatch",
    ),
    ("unknown model", {"prompt": "x", "model": "dall-e-9"}, [("image", PNG)], 400, "model_not_found"),
    ("retired model", {"prompt": "x", "model": "gpt-image-1"}, [("image", PNG)], 400, "model_retired"),
    ("bad n", {"prompt": "x", "n": "11"}, [("image", PNG)], 400, "invalid_n"),
    ("n not a number", {"prompt": "x", "n": "many"}, [("image", PNG)], 400, "invalid_parameter"),
    ("bad size", {"prompt": "x", "size": "999x999"}, [("image", PNG)], 400, "unsupported_size"),
    ("bad quality", {"prompt": "x", "quality": "ultra"}, [("image", PNG)], 400, "unsupported_quality"),
    (
        "input_fidelity on mini",
        {"prompt": "x", "input_fidelity": "high"},
        [("image", PNG)],
        400,
        "input_fidelity_unsupported",
    ),
    (
        "transparent jpeg",
        {"prompt": "x", "background": "transparent", "output_format": "jpeg"},
        [("image", PNG)],
        400,
        "transparent_needs_png_or_webp",
    ),
    (
        "compression on png",
        {"prompt": "x", "output_compression": "50"},
        [("image", PNG)],
        400,
        "compression_needs_jpeg_or_webp",
    ),
    (
        "bad aspect ratio",
        {"prompt": "x", "aspect_ratio": "10:1"},
        [("image", PNG)],
        400,
        "invalid_aspect_ratio",
    ),
    (
        "size and aspect ratio",
        {"prompt": "x", "aspect_ratio": "16:9", "size": "1024x1024"},
        [("image", PNG)],
        400,
        "conflicting_options",
    ),
    ("bad strength", {"prompt": "x", "strength": "max"}, [("image", PNG)], 400, "invalid_strength"),
    ("bad priority", {"prompt": "x", "priority": "urgent"}, [("image", PNG)], 400, "invalid_priority"),
    ("metadata not json", {"prompt": "x", "metadata": "{nope"}, [("image", PNG)], 400, "invalid_metadata"),
    (
        "webhook with credentials",
        {"prompt": "x", "webhook_url": "https://u:p@example.com/"},
        [("image", PNG)],
        400,
        "invalid_webhook_url",
    ),
    (
        "webhook not https",
        {"prompt": "x", "webhook_url": "ftp://example.com/"},
        [("image", PNG)],
        400,
        "invalid_webhook_url",
    ),
    (
        "over max_cost_usd",
        {"prompt": "x", "max_cost_usd": "0.001"},
        [("image", PNG)],
        402,
        "max_cost_exceeded",
    ),
    ("duplicate prompt", {"prompt": ["x", "y"]}, [("image", PNG)], 400, "duplicate_parameter"),
]


def _leftovers(stack: Universe, tenant: str) -> list[str]:
    r, p = stack.redis, stack.prefix
    found = [
        k
        for pattern in (
            f"{p}:job:{tenant}:*",
            f"{p}:img:{tenant}:*",
            f"{p}:q:{tenant}:*",
            f"{p}:idem:{tenant}:*",
            f"{p}:ev:{tenant}:*",
        )
        for k in r.scan_iter(pattern)
    ]
    if r.exists(f"{p}:jobs:{tenant}"):
        found.append(f"{p}:jobs:{tenant}")
    for key in r.scan_iter(f"{p}:budget:{tenant}:*"):
        if int(r.hget(key, "reserved") or 0) != 0:
            found.append(f"{key} reserved")
    found += stack.db.objects.list_keys(f"t/{tenant}/")
    return found


@pytest.mark.parametrize(("name", "data", "files", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_refused_with_its_code_and_nothing_left(
    stack: Universe, name: str, data: dict[str, Any], files: Any, status: int, code: str
) -> None:
    tenant, key = stack.tenant()
    with stack.client(key) as client:
        response = client.post("/v1/edits", data=data, files=files, headers={"Idempotency-Key": f"k-{name}"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert _leftovers(stack, tenant) == []


def test_oversize_upload_is_cut_off(stack: Universe, make_stack: Callable[..., Universe]) -> None:
    small = make_stack(
        workers=0, beat=False, EDITQ_MAX_IMAGE_BYTES="200000", EDITQ_MAX_REQUEST_BYTES="600000"
    )
    tenant, key = small.tenant()
    big = images.scene(1600, 1200, fmt="PNG", compress_level=0)
    assert len(big) > 200_000
    with small.client(key) as client:
        one = client.post("/v1/edits", data={"prompt": "x"}, files=[("image", ("a.png", big, "image/png"))])
        assert one.status_code == 413
        assert one.json()["error"]["code"] == "image_too_large"
        many = client.post(
            "/v1/edits",
            data={"prompt": "x"},
            files=[("image[]", ("a.png", images.scene(), "image/png"))] * 60,
        )
        assert many.status_code in (400, 413)
        assert many.json()["error"]["code"] in ("request_too_large", "too_many_parts")
    assert _leftovers(small, tenant) == []


def test_malformed_bodies(stack: Universe, client: httpx.Client, tenant: tuple[str, str]) -> None:
    truncated = (
        b'--XyZ\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhello\r\n--XyZ\r\n'
        b'Content-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        + images.scene()[:100]
    )
    response = client.post(
        "/v1/edits", content=truncated, headers={"Content-Type": "multipart/form-data; boundary=XyZ"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_multipart"
    response = client.post("/v1/edits", content=b"prompt=x", headers={"Content-Type": "text/plain"})
    assert response.json()["error"]["code"] == "unsupported_content_type"
    response = client.post("/v1/edits", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.json()["error"]["code"] == "invalid_json"
    response = client.post("/v1/edits", json={"prompt": "x", "image_ids": ["img_" + "0" * 64]})
    assert response.json()["error"]["code"] == "image_not_found"
    response = client.post("/v1/edits", json={"prompt": "x", "image_ids": ["img_x"], "nonsense": 1})
    assert response.json()["error"]["code"] == "unknown_parameter"
    response = client.post("/v1/edits", json=[1, 2])
    assert response.json()["error"]["code"] == "invalid_json"
    hostile = json.dumps({"prompt": "x\u0000y", "image_ids": []}).encode()
    response = client.post("/v1/edits", content=hostile, headers={"Content-Type": "application/json"})
    assert response.json()["error"]["code"] in ("invalid_prompt", "image_missing")
    response = client.post(
        "/v1/edits", data={"prompt": "x"}, files=[("image", PNG)], headers={"Cancel-After": "soon"}
    )
    assert response.json()["error"]["code"] == "invalid_cancel_after"
    response = client.post(
        "/v1/edits", data={"prompt": "x"}, files=[("image", PNG)], headers={"Idempotency-Key": "x" * 300}
    )
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert _leftovers(stack, tenant[0]) == []
