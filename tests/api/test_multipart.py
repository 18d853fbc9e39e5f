"""The streaming multipart reader enforces its limits while the bytes arrive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from editq.api.multipart import Limits, read_form
from editq.errors import EditqError

LIMITS = Limits(
    file_bytes={"mask": 50}, default_file_bytes=1000, field_bytes=100, total_bytes=5000, max_parts=5
)


def _encode(data: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]]) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://x/", data=data, files=files)
    return request.headers["content-type"], request.read()


async def _chunks(body: bytes, size: int = 64) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _read(content_type: str, body: bytes, limits: Limits = LIMITS):  # type: ignore[no-untyped-def]
    return asyncio.run(read_form(content_type, _chunks(body), limits))


def test_fields_and_files() -> None:
    content_type, body = _encode(
        {"prompt": "héllo"},
        [("image[]", ("a.png", b"1" * 10, "image/png")), ("image[]", ("b.png", b"2" * 20, "image/png"))],
    )
    form = _read(content_type, body)
    assert form.fields == {"prompt": ["héllo"]}
    assert [f.read() for f in form.files["image[]"]] == [b"1" * 10, b"2" * 20]
    assert form.files["image[]"][0].filename == "a.png"
    form.close()


@pytest.mark.parametrize(
    ("data", "files", "code"),
    [
        ({}, [("image", ("a.png", b"x" * 1001, "image/png"))], "image_too_large"),
        ({}, [("mask", ("m.png", b"x" * 51, "image/png"))], "mask_too_large"),
        ({"prompt": "p" * 101}, [("image", ("a.png", b"x", "image/png"))], "field_too_large"),
        ({f"f{i}": "v" for i in range(6)}, [("image", ("a.png", b"x", "image/png"))], "too_many_parts"),
        ({}, [("image[]", ("a.png", b"x" * 100, "image/png"))] * 6, "too_many_parts"),
    ],
)
def test_limits(data: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]], code: str) -> None:
    content_type, body = _encode(data, files)
    with pytest.raises(EditqError) as refused:
        _read(content_type, body)
    assert refused.value.code == code


def test_total_limit() -> None:
    content_type, body = _encode({}, [("image[]", ("a.png", b"x" * 900, "image/png"))] * 4)
    with pytest.raises(EditqError) as refused:
        _read(content_type, body, Limits({}, 1000, 100, 2000, 10))
    assert refused.value.code == "request_too_large"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue'),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: attachment\r\n\r\nv\r\n--x--\r\n"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n\xff\xfe\r\n--x--\r\n',
        ),
        ("application/json", b"{}"),
    ],
)
def test_malformed(content_type: str, body: bytes) -> None:
    with pytest.raises(EditqError) as refused:
        _read(content_type, body)
    assert refused.value.code in ("invalid_multipart", "invalid_encoding")


def test_an_empty_file_input_counts_as_not_sent() -> None:
    """Browsers send an unused file input as a part with no bytes, named "" (a form) or "blob"
    (FormData); a named empty file is still there, for the image checks to refuse."""
    parts = [
        ("prompt", None, b"p"),
        ("mask", "blob", b""),
        ("image", "", b""),
        ("image", "a.png", b""),
    ]
    body = b"".join(
        b'--B\r\nContent-Disposition: form-data; name="%s"%s\r\n\r\n%s\r\n'
        % (name.encode(), b"" if filename is None else b'; filename="%s"' % filename.encode(), data)
        for name, filename, data in parts
    )
    form = _read("multipart/form-data; boundary=B", body + b"--B--\r\n")
    assert form.fields == {"prompt": ["p"]}
    assert set(form.files) == {"image"}
    assert [f.filename for f in form.files["image"]] == ["a.png"]
    form.close()
