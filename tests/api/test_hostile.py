"""A hostile corpus against the real API over HTTP: files, fields, headers, ids, JSON, multipart
framing and webhook URLs. Each request gets a specific 4xx code, never a 5xx, and leaves no job,
record, queue entry, idempotency key, reservation or object behind."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from PIL import Image

from tests import images
from tests.api.test_bad_input import _leftovers
from tests.support.stack import Universe

PNG = images.scene()
B = "hostileB"
FULL_WIDTH = {ord(d): ord(d) + 0xFEE0 for d in "0123456789"}


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def _bomb_gif() -> bytes:
    """A GIF header claiming 65535x65535 pixels."""
    out = io.BytesIO()
    Image.new("P", (60000, 1000)).save(out, format="GIF")
    return out.getvalue()


def _bomb_png() -> bytes:
    out = io.BytesIO()
    Image.new("1", (30000, 30000)).save(out, format="PNG")
    return out.getvalue()


def _part(name: str, value: bytes, filename: str | None = None, content_type: str = "image/png") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"Content-Disposition: {disposition}\r\n"
    if filename:
        head += f"Content-Type: {content_type}\r\n"
    return f"--{B}\r\n{head}\r\n".encode() + value + b"\r\n"


def _body(*parts: bytes, close: bool = True) -> bytes:
    return b"".join(parts) + (f"--{B}--\r\n".encode() if close else b"")


PROMPT = _part("prompt", b"make it rain")
IMAGE = _part("image", PNG, "a.png")


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    code: str
    path: str = "/v1/edits"
    method: str = "POST"
    content: bytes | None = None
    content_type: str | None = f"multipart/form-data; boundary={B}"
    headers: list[tuple[str, str | bytes]] = field(default_factory=list)
    auth: bool = True


def _file(name: str, data: bytes, status: int, code: str, content_type: str = "image/png") -> Case:
    return Case(f"file: {name}", status, code, content=_body(PROMPT, _part("image", data, "x", content_type)))


def _fields(name: str, status: int, code: str, **values: str | bytes) -> Case:
    parts = [_part(k, v if isinstance(v, bytes) else v.encode()) for k, v in values.items()]
    return Case(f"field: {name}", status, code, content=_body(*parts, IMAGE))


def _json(name: str, body: bytes, status: int, code: str, path: str = "/v1/edits") -> Case:
    return Case(f"json: {name}", status, code, path=path, content=body, content_type="application/json")


def _webhook(name: str, url: str, code: str = "invalid_webhook_url") -> Case:
    return _fields(f"webhook {name}", 400, code, prompt="x", webhook_url=url)


def _get(name: str, path: str, status: int = 404, code: str = "job_not_found") -> Case:
    return Case(f"id: {name}", status, code, path=path, method="GET", content_type=None)


FILES = [
    _file("plain text", b"hello, not an image", 400, "invalid_image"),
    _file("html", b"<!doctype html><script>alert(1)</script>", 400, "invalid_image"),
    _file("pdf", b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", 400, "invalid_image"),
    _file("zip", b"PK\x03\x04" + b"\x00" * 60, 400, "invalid_image"),
    _file(
        "svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="9999" height="9999"/>', 400, "invalid_image"
    ),
    _file("empty", b"", 400, "image_empty"),
    _file("png signature only", b"\x89PNG\r\n\x1a\n", 400, "invalid_image"),
    _file("truncated png", PNG[: len(PNG) // 2], 400, "image_truncated"),
    _file("truncated jpeg", images.scene(fmt="JPEG")[:500], 400, "image_corrupt", "image/jpeg"),
    _file("png bomb", _bomb_png(), 400, "image_too_many_pixels"),
    _file("gif bomb", _bomb_gif(), 400, "image_too_many_pixels", "image/gif"),
    _file("polyglot png+html", b"\x89PNG\r\n\x1a\n<html><script>x</script></html>" * 4, 400, "invalid_image"),
    _file("polyglot jpeg+php", b"\xff\xd8\xff\xe0<?php system($_GET[0]); ?>" * 4, 400, "image_corrupt"),
    _file(
        "heic",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
        415,
        "unsupported_image_format",
    ),
    _file("apng", _animated("PNG"), 415, "animated_image"),
    _file("animated gif", _animated("GIF"), 415, "animated_image", "image/gif"),
    Case(
        "file: mask jpeg",
        400,
        "mask_not_png",
        content=_body(PROMPT, IMAGE, _part("mask", images.scene(fmt="JPEG"), "m.jpg", "image/jpeg")),
    ),
    Case(
        "file: mask without alpha",
        400,
        "mask_without_alpha",
        content=_body(PROMPT, IMAGE, _part("mask", images.mask(alpha=False), "m.png")),
    ),
    Case(
        "file: mask wrong size",
        400,
        "mask_size_mismatch",
        content=_body(PROMPT, IMAGE, _part("mask", images.mask(320, 240), "m.png")),
    ),
    Case(
        "file: mask not an image",
        400,
        "invalid_image",
        content=_body(PROMPT, IMAGE, _part("mask", b"GIF89a? not really", "m.png")),
    ),
    Case(
        "file: two masks",
        400,
        "duplicate_parameter",
        content=_body(
            PROMPT, IMAGE, _part("mask", images.mask(), "m.png"), _part("mask", images.mask(), "n.png")
        ),
    ),
    Case(
        "file: mask as a text field",
        400,
        "invalid_image",
        content=_body(PROMPT, IMAGE, _part("mask", b"abc")),
    ),
    Case("file: image as a text field", 400, "invalid_image", content=_body(PROMPT, _part("image", b"abc"))),
    Case(
        "file: 17 images",
        400,
        "too_many_images",
        content=_body(PROMPT, *[_part("image[]", PNG, "a.png")] * 17),
    ),
    Case(
        "file: unknown file field",
        400,
        "unknown_parameter",
        content=_body(PROMPT, IMAGE, _part("photo", PNG, "p.png")),
    ),
]

DEEP_METADATA = "[" * 1900 + "]" * 1900
FIELDS = [
    _fields("no prompt", 400, "prompt_missing", model="gpt-image-1-mini"),
    _fields("blank prompt", 400, "prompt_missing", prompt="   "),
    _fields("NUL in prompt", 400, "invalid_prompt", prompt="a\x00b"),
    _fields("prompt over the limit", 400, "prompt_too_long", prompt="a" * 32001),
    Case("field: duplicate prompt", 400, "duplicate_parameter", content=_body(PROMPT, PROMPT, IMAGE)),
    _fields("n zero", 400, "invalid_n", prompt="x", n="0"),
    _fields("n negative", 400, "invalid_n", prompt="x", n="-3"),
    _fields("n full-width", 400, "invalid_parameter", prompt="x", n="2".translate(FULL_WIDTH)),
    _fields("n with underscore", 400, "invalid_parameter", prompt="x", n="1_0"),
    _fields("n huge", 400, "invalid_parameter", prompt="x", n="9" * 40),
    _fields(
        "compression full-width",
        400,
        "invalid_parameter",
        prompt="x",
        output_compression="50".translate(FULL_WIDTH),
    ),
    _fields("max cost NaN", 400, "invalid_parameter", prompt="x", max_cost_usd="NaN"),
    _fields("max cost negative", 400, "invalid_parameter", prompt="x", max_cost_usd="-1"),
    _fields("metadata NaN", 400, "invalid_metadata", prompt="x", metadata='{"a": NaN}'),
    _fields("metadata Infinity", 400, "invalid_metadata", prompt="x", metadata='{"a": [-Infinity]}'),
    _fields("metadata 1900 deep", 400, "metadata_too_deep", prompt="x", metadata=DEEP_METADATA),
    _fields(
        "metadata 20 deep",
        400,
        "metadata_too_deep",
        prompt="x",
        metadata='{"a": ' + "[" * 20 + "]" * 20 + "}",
    ),
    _fields("metadata array", 400, "invalid_metadata", prompt="x", metadata="[1, 2]"),
    _fields(
        "metadata 17 keys",
        400,
        "metadata_too_large",
        prompt="x",
        metadata=json.dumps({f"k{i}": i for i in range(17)}),
    ),
    _fields("reuse maybe", 400, "invalid_parameter", prompt="x", reuse="maybe"),
    _fields("user too long", 400, "invalid_parameter", prompt="x", user="u" * 300),
    _fields(
        "aspect ratio full-width",
        400,
        "invalid_aspect_ratio",
        prompt="x",
        aspect_ratio="16:9".translate(FULL_WIDTH),
    ),
    _fields("size full-width", 400, "unsupported_size", prompt="x", size="1024x1024".translate(FULL_WIDTH)),
    _fields(
        "webhook events unknown", 400, "invalid_webhook_events", prompt="x", webhook_events="edit.exploded"
    ),
    _fields("not utf-8", 400, "invalid_encoding", prompt=b"\xff\xfe\xfa"),
    _fields("unknown field", 400, "unknown_parameter", prompt="x", temperature="2"),
]

HEADERS = [
    Case(
        "header: two Authorization",
        400,
        "duplicate_header",
        content=_body(PROMPT, IMAGE),
        headers=[("Authorization", "Bearer wrong")],
    ),
    Case("header: no Authorization", 401, "missing_api_key", content=_body(PROMPT, IMAGE), auth=False),
    Case(
        "header: Basic auth",
        401,
        "invalid_api_key",
        content=_body(PROMPT, IMAGE),
        auth=False,
        headers=[("Authorization", "Basic dXNlcjpwYXNz")],
    ),
    Case(
        "header: unknown key",
        401,
        "invalid_api_key",
        content=_body(PROMPT, IMAGE),
        auth=False,
        headers=[("Authorization", "Bearer eq_nope_" + "x" * 40)],
    ),
    Case(
        "header: two Idempotency-Keys",
        400,
        "duplicate_header",
        content=_body(PROMPT, IMAGE),
        headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
    ),
    Case(
        "header: two Content-Types",
        400,
        "duplicate_header",
        content=_body(PROMPT, IMAGE),
        headers=[("Content-Type", "application/json")],
    ),
    Case(
        "header: Idempotency-Key too long",
        400,
        "invalid_idempotency_key",
        content=_body(PROMPT, IMAGE),
        headers=[("Idempotency-Key", "k" * 300)],
    ),
    Case(
        "header: Cancel-After full-width",
        400,
        "invalid_cancel_after",
        content=_body(PROMPT, IMAGE),
        headers=[("Cancel-After", "90".translate(FULL_WIDTH).encode())],
    ),
    Case(
        "header: Cancel-After negative",
        400,
        "invalid_cancel_after",
        content=_body(PROMPT, IMAGE),
        headers=[("Cancel-After", "-5")],
    ),
    Case(
        "header: text/plain body",
        400,
        "unsupported_content_type",
        content=b"prompt=x",
        content_type="text/plain",
    ),
]

IDS = [
    _get("dot-dot", "/v1/edits/%2E%2E"),
    _get("encoded traversal", "/v1/edits/..%2F..%2Fetc%2Fpasswd", 404, "not_found"),
    _get("unicode", "/v1/edits/edit_%C3%A9%E2%80%AE"),
    _get("NUL", "/v1/edits/edit_%00"),
    _get("huge", "/v1/edits/" + "e" * 8000),
    _get("other route traversal", "/v1/edits/%2E%2E/deliveries"),
    _get("output index not a number", "/v1/edits/edit_x/outputs/abc", 400, "invalid_parameter"),
    Case(
        "id: cancel traversal",
        404,
        "not_found",
        path="/v1/edits/%2E%2E%2F%2E%2E/cancel",
        content_type=None,
    ),
    Case(
        "id: redeliver traversal",
        404,
        "delivery_not_found",
        path="/v1/webhooks/%2E%2E/redeliver",
        content_type=None,
    ),
    _json(
        "image id traversal",
        json.dumps({"prompt": "x", "image_ids": ["img_../../etc/passwd"]}).encode(),
        400,
        "image_not_found",
    ),
    _json(
        "image id huge",
        json.dumps({"prompt": "x", "image_ids": ["img_" + "a" * 100000]}).encode(),
        400,
        "image_not_found",
    ),
    _json(
        "image id not a string",
        json.dumps({"prompt": "x", "image_ids": [{"$gt": ""}]}).encode(),
        400,
        "image_not_found",
    ),
    _json(
        "mask id unicode",
        json.dumps({"prompt": "x", "image_ids": ["img_" + "0" * 64], "mask_id": "img_\u202e"}).encode(),
        400,
        "image_not_found",
    ),
]

JSON = [
    _json("100000 nested [", b"[" * 100_000, 400, "json_too_deep"),
    _json("100000 nested {", b'{"a":' * 100_000, 400, "json_too_deep"),
    _json(
        "40 levels",
        json.dumps({"prompt": "x", "metadata": {"a": json.loads("[" * 40 + "]" * 40)}}).encode(),
        400,
        "json_too_deep",
    ),
    _json(
        "metadata 1900 deep",
        b'{"prompt": "x", "image_ids": [], "metadata": ' + DEEP_METADATA.encode() + b"}",
        400,
        "json_too_deep",
    ),
    _json("NaN", b'{"prompt": "x", "n": NaN}', 400, "invalid_json"),
    _json("Infinity in metadata", b'{"prompt": "x", "metadata": {"a": Infinity}}', 400, "invalid_json"),
    _json("not an object", b"[1, 2, 3]", 400, "invalid_json"),
    _json("truncated", b'{"prompt": "x", "image_ids": ["img_', 400, "invalid_json"),
    _json("invalid utf-8", b'{"prompt": "\xff\xfe"}', 400, "invalid_json"),
    _json("over 1 MB", b'{"prompt": "' + b"a" * (1024 * 1024 + 10) + b'"}', 413, "request_too_large"),
    _json("huge integer", b'{"prompt": "x", "n": 1' + b"0" * 5000 + b"}", 400, "invalid_json"),
    _json("batch nested", b'{"items": ' + b"[" * 50_000, 400, "json_too_deep", path="/v1/edits/batch"),
    _json("batch items not a list", b'{"items": {"a": 1}}', 400, "invalid_batch", path="/v1/edits/batch"),
    _json("batch empty", b'{"items": []}', 400, "invalid_batch_size", path="/v1/edits/batch"),
]

MULTIPART = [
    Case(
        "multipart: no boundary",
        400,
        "invalid_multipart",
        content=_body(PROMPT, IMAGE),
        content_type="multipart/form-data",
    ),
    Case(
        "multipart: 5000-char boundary",
        400,
        "invalid_boundary",
        content=_body(PROMPT, IMAGE),
        content_type="multipart/form-data; boundary=" + "b" * 5000,
    ),
    Case(
        "multipart: 71-char boundary",
        400,
        "invalid_boundary",
        content=_body(PROMPT, IMAGE),
        content_type="multipart/form-data; boundary=" + "b" * 71,
    ),
    Case(
        "multipart: boundary with control characters",
        400,
        "invalid_boundary",
        content=_body(PROMPT, IMAGE),
        content_type='multipart/form-data; boundary="a\x01b"',
    ),
    Case(
        "multipart: unterminated part",
        400,
        "invalid_multipart",
        content=PROMPT + IMAGE[:300],
    ),
    Case(
        "multipart: no closing boundary", 400, "invalid_multipart", content=_body(PROMPT, IMAGE, close=False)
    ),
    Case("multipart: empty body", 400, "invalid_multipart", content=b""),
    Case("multipart: garbage", 400, "invalid_multipart", content=b"\x00\x01 definitely not multipart"),
    Case(
        "multipart: part without disposition",
        400,
        "invalid_multipart",
        content=_body(f"--{B}\r\nContent-Type: text/plain\r\n\r\nx\r\n".encode(), IMAGE),
    ),
    Case(
        "multipart: disposition not form-data",
        400,
        "invalid_multipart",
        content=_body(
            f'--{B}\r\nContent-Disposition: attachment; name="prompt"\r\n\r\nx\r\n'.encode(), IMAGE
        ),
    ),
    Case(
        "multipart: too many parts",
        400,
        "too_many_parts",
        content=_body(*[_part(f"f{i}", b"x") for i in range(80)]),
    ),
    Case(
        "multipart: field over 256 KB",
        413,
        "field_too_large",
        content=_body(_part("prompt", b"a" * (300 * 1024)), IMAGE),
    ),
    Case(
        "multipart: upload with 5000-char boundary",
        400,
        "invalid_boundary",
        path="/v1/uploads",
        content=_body(_part("file", PNG, "a.png")),
        content_type="multipart/form-data; boundary=" + "u" * 5000,
    ),
    Case(
        "multipart: upload with two files",
        400,
        "image_missing",
        path="/v1/uploads",
        content=_body(_part("file", PNG, "a.png"), _part("file", PNG, "b.png")),
    ),
    Case(
        "multipart: upload with an extra field",
        400,
        "unknown_parameter",
        path="/v1/uploads",
        content=_body(_part("file", PNG, "a.png"), _part("note", b"hi")),
    ),
]

WEBHOOKS = [
    _webhook("CRLF", "https://example.com/hook\r\nX-Injected: 1"),
    _webhook("LF at the end", "https://example.com/hook\n"),
    _webhook("tab", "https://example.com/\thook"),
    _webhook("space", "https://example.com/a hook"),
    _webhook("credentials", "https://user:pass@example.com/hook"),
    _webhook("ftp", "ftp://example.com/hook"),
    _webhook("javascript", "javascript:alert(1)"),
    _webhook("no host", "https:///hook"),
    _webhook("port out of range", "https://example.com:99999/hook"),
    _webhook("broken ipv6", "https://[::1/hook"),
    _webhook("too long", "https://example.com/" + "a" * 3000),
]

CASES = [*FILES, *FIELDS, *HEADERS, *IDS, *JSON, *MULTIPART, *WEBHOOKS]


def _send(client: httpx.Client, case: Case, key: str) -> httpx.Response:
    headers: list[tuple[str, str | bytes]] = []
    if case.auth:
        headers.append(("Authorization", f"Bearer {key}"))
    if case.content_type is not None:
        headers.append(("Content-Type", case.content_type))
    headers += case.headers
    raw = [(name.encode(), value if isinstance(value, bytes) else value.encode()) for name, value in headers]
    return client.request(case.method, case.path, content=case.content, headers=raw)


def test_the_corpus_is_large_and_distinct() -> None:
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_request(stack: Universe, case: Case) -> None:
    tenant, key = stack.tenant()
    with httpx.Client(base_url=stack.api_url, timeout=60) as client:
        response = _send(client, case, key)
    assert response.status_code < 500, response.text
    assert response.status_code == case.status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == case.code, error
    assert error["message"]
    assert _leftovers(stack, tenant) == []
