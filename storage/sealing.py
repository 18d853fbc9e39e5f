"""Secrets at rest: values editq must read back (webhook signing secrets) are encrypted with
Fernet under EDITQ_SECRETS_KEY before they reach Redis.

The setting is a comma-separated list of keys: the first encrypts, every one decrypts, so a
key is rotated by putting a new one first and dropping the old one once every record has been
re-sealed (`reseal` says whether a stored value should be written again). Values written
before a key was configured are plain text and still read.
"""

from __future__ import annotations

import functools
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from editq.settings import Settings

log = logging.getLogger("editq.storage")

SEALED = "fernet:"


class Unreadable(ValueError):
    """A sealed value none of the configured keys opens."""


@functools.cache
def _keys(joined: str) -> tuple[MultiFernet, Fernet]:
    keys = [Fernet(k.strip().encode()) for k in joined.split(",") if k.strip()]
    return MultiFernet(keys), keys[0]


def _box(settings: Settings) -> tuple[MultiFernet, Fernet] | None:
    if settings.secrets_key is None:
        return None
    return _keys(settings.secrets_key.get_secret_value())


def seal(settings: Settings, text: str) -> str:
    box = _box(settings)
    if box is None:
        log.warning("EDITQ_SECRETS_KEY is unset: a secret is stored unencrypted")
        return text
    return SEALED + box[0].encrypt(text.encode()).decode()


def unseal(settings: Settings, stored: str) -> tuple[str, bool]:
    """The plain value, and whether it should be sealed again (plain text, or an old key)."""
    box = _box(settings)
    if not stored.startswith(SEALED):
        return stored, box is not None
    if box is None:
        raise Unreadable("a secret is encrypted but EDITQ_SECRETS_KEY is unset")
    token = stored.removeprefix(SEALED).encode()
    try:
        return box[1].decrypt(token).decode(), False
    except InvalidToken:
        pass
    try:
        return box[0].decrypt(token).decode(), True
    except InvalidToken as exc:
        raise Unreadable("no key in EDITQ_SECRETS_KEY opens a stored secret") from exc
