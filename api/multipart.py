"""A streaming multipart/form-data reader with limits enforced while bytes arrive.

Files go to spooled temporary files and a part over its limit stops the upload at once (413)
instead of after the whole body was written to disk.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import IO

from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from editq.errors import EditqError, InvalidRequest, PayloadTooLarge

SPOOL_BYTES = 1024 * 1024
#: RFC 2046: a boundary is 1 to 70 characters from a small set.
MAX_BOUNDARY = 70
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


@dataclass
class UploadedFile:
    name: str
    filename: str
    content_type: str
    file: IO[bytes]
    size: int = 0

    def read(self) -> bytes:
        self.file.seek(0)
        return self.file.read()


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)

    def close(self) -> None:
        for items in self.files.values():
            for item in items:
                item.file.close()


@dataclass(frozen=True)
class Limits:
    file_bytes: dict[str, int]
    default_file_bytes: int
    field_bytes: int
    total_bytes: int
    max_parts: int


#: The file names of a part that carries no file of the user's: an empty file input of a form,
#: and FormData's name for a Blob without one.
UNNAMED = ("", "blob")


def _disposition(value: bytes) -> tuple[str, str | None]:
    kind, params = parse_options_header(value)
    if kind.lower() != b"form-data" or b"name" not in params:
        raise InvalidRequest("invalid_multipart", "every part needs Content-Disposition: form-data; name=...")
    name = params[b"name"].decode("utf-8", "replace")
    filename = params.get(b"filename")
    return name, None if filename is None else filename.decode("utf-8", "replace")


class _Collector:
    """Callbacks for python-multipart that build a `Form` within `Limits`."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.form = Form()
        self.parts = 0
        self.headers: dict[bytes, bytes] = {}
        self.header_field = b""
        self.header_value = b""
        self.name = ""
        self.upload: UploadedFile | None = None
        self.buffer = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self.headers = {}
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise InvalidRequest("too_many_parts", f"at most {self.limits.max_parts} form parts")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        self.name, filename = _disposition(self.headers.get(b"content-disposition", b""))
        self.buffer = bytearray()
        self.upload = None
        if filename is not None:
            content_type = self.headers.get(b"content-type", b"application/octet-stream")
            self.upload = UploadedFile(
                name=self.name,
                filename=filename,
                content_type=content_type.decode("latin-1"),
                file=SpooledTemporaryFile(max_size=SPOOL_BYTES),  # noqa: SIM115 - Form.close closes it
            )
            self.form.files.setdefault(self.name, []).append(self.upload)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self.upload is not None:
            self.upload.size += len(chunk)
            limit = self.limits.file_bytes.get(self.name, self.limits.default_file_bytes)
            if self.upload.size > limit:
                param = _base(self.name)
                raise PayloadTooLarge(f"{param}_too_large", f"{param} is over the {limit} byte limit", param)
            self.upload.file.write(chunk)
            return
        self.buffer.extend(chunk)
        if len(self.buffer) > self.limits.field_bytes:
            raise PayloadTooLarge(
                "field_too_large", f"field {self.name} is over {self.limits.field_bytes} bytes", self.name
            )

    def on_part_end(self) -> None:
        if self.upload is not None and self.upload.size == 0 and self.upload.filename in UNNAMED:
            # a file input left empty: browsers send it with no bytes and no name (a form) or
            # the name of an anonymous Blob (FormData, as /docs does): it counts as not sent
            self.form.files[self.name].remove(self.upload)
            if not self.form.files[self.name]:
                del self.form.files[self.name]
            self.upload.file.close()
        if self.upload is None:
            try:
                text = self.buffer.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequest(
                    "invalid_encoding", f"field {self.name} is not UTF-8", self.name
                ) from None
            self.form.fields.setdefault(self.name, []).append(text)
        self.upload = None


async def read_form(content_type: str, stream: AsyncIterator[bytes], limits: Limits) -> Form:
    """Parse a multipart body from `stream`, refusing an oversize part as soon as it passes
    its limit."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidRequest("invalid_multipart", "expected multipart/form-data with a boundary")
    if len(boundary) > MAX_BOUNDARY or not _BOUNDARY.fullmatch(boundary):
        raise InvalidRequest(
            "invalid_boundary", f"the multipart boundary is 1 to {MAX_BOUNDARY} plain characters (RFC 2046)"
        )
    collector = _Collector(limits)
    total = 0
    try:
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        async for chunk in stream:
            total += len(chunk)
            if total > limits.total_bytes:
                raise PayloadTooLarge("request_too_large", f"the request is over {limits.total_bytes} bytes")
            parser.write(chunk)
        parser.finalize()
        if parser.state != MultipartState.END:
            raise InvalidRequest("invalid_multipart", "the multipart body ends before its closing boundary")
    except EditqError:
        collector.form.close()
        raise
    except Exception as exc:
        collector.form.close()
        raise InvalidRequest("invalid_multipart", f"the multipart body is malformed: {exc}") from None
    return collector.form


def _base(name: str) -> str:
    return name[:-2] if name.endswith("[]") else name
