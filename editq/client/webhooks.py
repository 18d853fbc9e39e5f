"""Checking a webhook editq sent: its Standard Webhooks signature, its age, its body."""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping, Sequence

from pydantic import ValidationError
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from editq.client.errors import InvalidWebhook
from editq.client.models import WebhookEvent


def verify_webhook(
    payload: bytes | str, headers: Mapping[str, str], secret: str | Sequence[str]
) -> WebhookEvent:
    """The event of a webhook whose `webhook-signature` matches one of the tenant's secrets
    (`whsec_…`, from `GET /v1/webhooks/secret`; pass both during a rotation) and whose
    `webhook-timestamp` is within five minutes of this machine's clock. Pass the body exactly as
    received (bytes), not JSON parsed and dumped again.

    Raises `InvalidWebhook` with code `invalid_signature` (no secret matches, or the headers or
    secret are malformed), `invalid_timestamp` (too old or too new) or `invalid_payload` (signed,
    but not an editq event)."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    plain = {str(k).lower(): str(v) for k, v in headers.items()}
    failure = InvalidWebhook("no signing secret given", code="invalid_signature")
    for candidate in secrets:
        try:
            Webhook(candidate).verify(payload, plain, json_parse=False)
        except WebhookVerificationError as exc:
            code = "invalid_timestamp" if "timestamp" in str(exc).lower() else "invalid_signature"
            failure = InvalidWebhook(str(exc), code=code)
        except (ValueError, binascii.Error, TypeError, RuntimeError, EmptyWebhookSecretError) as exc:
            # what standardwebhooks raises for a malformed signature header, body or secret
            failure = InvalidWebhook(f"malformed signature, body or secret: {exc}", code="invalid_signature")
        else:
            return _event(payload)
    raise failure


def _event(payload: bytes | str) -> WebhookEvent:
    try:
        return WebhookEvent.model_validate(json.loads(payload))
    except (ValueError, RecursionError, ValidationError) as exc:
        raise InvalidWebhook(f"signed, but not an editq event: {exc}", code="invalid_payload") from None
