"""`verify_webhook` against bodies signed the way editq's webhook sender signs them
(`editq.signing`); a real delivery is checked in tests/stack/test_client.py."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest

from editq import signing
from editq.client import InvalidWebhook, verify_webhook

OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
BODY = json.dumps(
    {
        "type": "edit.succeeded",
        "timestamp": "2026-11-26T12:00:00.000Z",
        "data": {"id": "edit_1", "object": "edit", "status": "succeeded"},
    }
).encode()


def signed(body: bytes = BODY, secrets: tuple[str, ...] = (NEW,), at: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if at is None else at
    return {
        "Webhook-Id": "dlv_1",
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": signing.signature_header(list(secrets), "dlv_1", timestamp, body),
    }


def test_a_signed_event_verifies_and_parses() -> None:
    event = verify_webhook(BODY, signed(), NEW)
    assert event.type == "edit.succeeded"
    assert event.data.id == "edit_1"
    assert event.data.succeeded
    assert event.raw == json.loads(BODY)


def test_during_a_rotation_either_secret_verifies() -> None:
    headers = signed(secrets=(NEW, OLD))
    assert verify_webhook(BODY, headers, OLD).data.id == "edit_1"
    assert verify_webhook(BODY.decode(), headers, [NEW]).data.id == "edit_1"
    assert verify_webhook(BODY, signed(secrets=(OLD,)), [NEW, OLD]).data.id == "edit_1"


@pytest.mark.parametrize(
    ("body", "headers", "secret", "code"),
    [
        pytest.param(BODY.replace(b"succeeded", b"failed"), signed, NEW, "invalid_signature", id="tampered"),
        pytest.param(BODY, signed, OLD, "invalid_signature", id="other-secret"),
        pytest.param(BODY, lambda: signed(at=int(time.time()) - 600), NEW, "invalid_timestamp", id="stale"),
        pytest.param(BODY, lambda: signed(at=int(time.time()) + 600), NEW, "invalid_timestamp", id="future"),
        pytest.param(
            BODY, lambda: {**signed(), "Webhook-Timestamp": "soon"}, NEW, "invalid_signature", id="not-a-time"
        ),
        pytest.param(BODY, lambda: {"webhook-id": "dlv_1"}, NEW, "invalid_signature", id="missing-headers"),
        pytest.param(
            BODY, lambda: {**signed(), "Webhook-Signature": "v1"}, NEW, "invalid_signature", id="no-comma"
        ),
        pytest.param(
            BODY, lambda: {**signed(), "Webhook-Signature": "v1,***"}, NEW, "invalid_signature", id="not-b64"
        ),
        pytest.param(BODY, signed, "whsec_", "invalid_signature", id="empty-secret"),
        pytest.param(BODY, signed, "whsec_%%%", "invalid_signature", id="malformed-secret"),
        pytest.param(BODY, signed, [], "invalid_signature", id="no-secret"),
        pytest.param(b"[1, 2]", lambda: signed(b"[1, 2]"), NEW, "invalid_payload", id="not-an-event"),
        pytest.param(b"\xff{", lambda: signed(b"\xff{"), NEW, "invalid_signature", id="not-utf8"),
        pytest.param(b"[" * 100_000, lambda: signed(b"[" * 100_000), NEW, "invalid_payload", id="deep-json"),
    ],
)
def test_anything_else_is_refused_with_its_code(
    body: bytes, headers: Callable[[], dict[str, str]], secret: str | list[str], code: str
) -> None:
    # Headers are signed when the test runs, not when it is collected: a long suite can start
    # this test more than the five minutes of tolerance after collection.
    with pytest.raises(InvalidWebhook) as raised:
        verify_webhook(body, headers(), secret)
    assert raised.value.code == code
