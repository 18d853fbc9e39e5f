"""The request guard's pure parts: singleton headers and per-tenant upload slots."""

from __future__ import annotations

import pytest

from editq.api.guard import UploadSlots, duplicated
from editq.errors import TooManyRequests


def test_a_repeated_singleton_header_is_named() -> None:
    scope = {
        "headers": [(b"authorization", b"Bearer a"), (b"accept", b"*/*"), (b"Authorization", b"Bearer b")]
    }
    assert duplicated(scope) == "authorization"


def test_repeatable_headers_pass() -> None:
    scope = {"headers": [(b"accept", b"a"), (b"accept", b"b"), (b"authorization", b"Bearer a")]}
    assert duplicated(scope) is None


def test_upload_slots_bound_each_tenant_and_come_back() -> None:
    slots = UploadSlots(2)
    with slots.hold("a"), slots.hold("a"), slots.hold("b"):
        with pytest.raises(TooManyRequests) as refused, slots.hold("a"):
            pass
        assert refused.value.code == "too_many_uploads"
    assert slots.active == {}
    with slots.hold("a"):
        assert slots.active == {"a": 1}
