"""`EDITQ_S3_PUBLIC_ENDPOINT_URL`: an address clients open, checked when the settings are read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from editq.settings import Settings


def _public(value: str) -> str | None:
    return Settings.model_validate({"EDITQ_S3_PUBLIC_ENDPOINT_URL": value}).s3_public_endpoint_url


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("http://localhost:9000", "http://localhost:9000"),
        ("https://s3.example.com/", "https://s3.example.com"),
        (" https://[::1]:9000 ", "https://[::1]:9000"),
        ("", None),
        ("   ", None),
    ],
)
def test_public_endpoints_that_clients_can_open(given: str, kept: str | None) -> None:
    assert _public(given) == kept


@pytest.mark.parametrize(
    "given",
    [
        "localhost:9000",  # no scheme
        "ftp://s3.example.com",
        "http://",
        "https://user:pass@s3.example.com",  # credentials would end up in every URL
        "https://s3.example.com/?x=1",
        "https://s3.example.com/#top",
        "http://localhost:99999",
        "http://localhost:0",
        "http://local host:9000",
        "http://s3.example.com\r\nX-Injected: 1",
        "https://" + "a" * 70000 + ".example.com:notaport",
    ],
)
def test_anything_else_is_refused_at_start(given: str) -> None:
    with pytest.raises(ValidationError, match=r"EDITQ_S3_PUBLIC_ENDPOINT_URL|port"):
        _public(given)
