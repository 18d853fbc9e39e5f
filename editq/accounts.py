"""Provider accounts: the pool admission routes jobs over.

`EDITQ_PROVIDER_ACCOUNTS` is a JSON list of accounts, or `@path` to a file holding one. Each
names the environment variable that holds its key (a key in the list itself is refused). Unset,
the single-account settings of before (OPENAI_BASE_URL, EDITQ_PROVIDER_IPM, ...) make one
account named `default`: the one-account shorthand.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from editq.catalogue import Catalogue

#: The shorthand's account name.
DEFAULT_ACCOUNT = "default"
#: Account names: they become Redis key parts and metric labels.
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
#: Environment variable names an account may take its key from.
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
KINDS = ("openai", "azure")
#: Most accounts in one pool (each is scanned on every admission).
MAX_ACCOUNTS = 32
_FIELDS = {
    "name",
    "kind",
    "base_url",
    "endpoint",
    "deployments",
    "api_version",
    "api_key_env",
    "models",
    "ipm",
    "rpm",
    "max_inflight",
    "price_factor",
}
_SECRET_FIELDS = {"api_key", "key", "apikey", "api-key", "secret", "token"}
DEFAULT_AZURE_VERSION = "2025-04-01-preview"


class AccountsError(ValueError):
    """EDITQ_PROVIDER_ACCOUNTS is not a valid list of accounts (the message says where)."""


@dataclass(frozen=True)
class Account:
    """One provider account: where to call, with which key, for which models, how fast."""

    name: str
    kind: Literal["openai", "azure"]
    ipm: int
    rpm: int
    max_inflight: int
    #: OpenAI: the API base (`https://api.openai.com/v1`); Azure: the resource endpoint.
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str = ""
    #: Catalogue names served; None: every model (the shorthand).
    models: frozenset[str] | None = None
    deployments: Mapping[str, str] = field(default_factory=dict)
    api_version: str = DEFAULT_AZURE_VERSION
    #: Relative price of this account's calls: admission prefers the cheapest account with room.
    price_factor: float = 1.0

    def serves(self, model: str) -> bool:
        return self.models is None or model in self.models


def load(text: str | None, env: Mapping[str, str], catalogue: Catalogue) -> tuple[Account, ...] | None:
    """The accounts `text` (the variable's value) configures, or None when it is unset or blank."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AccountsError(f"EDITQ_PROVIDER_ACCOUNTS: cannot read {path}: {exc}") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise AccountsError(f"EDITQ_PROVIDER_ACCOUNTS is not valid JSON: {exc}") from None
    return parse(data, env, catalogue)


def parse(data: Any, env: Mapping[str, str], catalogue: Catalogue) -> tuple[Account, ...]:
    if not isinstance(data, list) or not data:
        raise AccountsError("EDITQ_PROVIDER_ACCOUNTS must be a non-empty JSON list of accounts")
    if len(data) > MAX_ACCOUNTS:
        raise AccountsError(f"EDITQ_PROVIDER_ACCOUNTS: at most {MAX_ACCOUNTS} accounts")
    accounts = [_account(i, item, env, catalogue) for i, item in enumerate(data)]
    seen: set[str] = set()
    for account in accounts:
        if account.name in seen:
            raise AccountsError(f"EDITQ_PROVIDER_ACCOUNTS: the name {account.name!r} is used twice")
        seen.add(account.name)
    return tuple(accounts)


def _account(index: int, item: Any, env: Mapping[str, str], catalogue: Catalogue) -> Account:
    where = f"EDITQ_PROVIDER_ACCOUNTS[{index}]"
    if not isinstance(item, dict):
        raise AccountsError(f"{where} must be a JSON object")
    secret = sorted(k for k in item if str(k).lower() in _SECRET_FIELDS)
    if secret:
        raise AccountsError(
            f"{where} holds a key ({secret[0]!r}): keys never go in the list; "
            "name the environment variable that holds it in 'api_key_env'"
        )
    unknown = sorted(str(k) for k in item if k not in _FIELDS)
    if unknown:
        raise AccountsError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})")
    name = item.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise AccountsError(
            f"{where}.name must be 1-32 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    where = f"EDITQ_PROVIDER_ACCOUNTS[{name}]"
    kind = item.get("kind", "openai")
    if kind not in KINDS:
        raise AccountsError(f"{where}.kind must be one of {', '.join(KINDS)}, not {kind!r}")
    key_env = item.get("api_key_env")
    if not isinstance(key_env, str) or not ENV_NAME.fullmatch(key_env):
        raise AccountsError(f"{where}.api_key_env must name an environment variable (like OPENAI_KEY_EU)")
    key = env.get(key_env, "").strip()
    if not key:
        raise AccountsError(f"{where}.api_key_env names {key_env}, which is not set")
    url_field = "endpoint" if kind == "azure" else "base_url"
    url = _url(where, url_field, item.get(url_field))
    return Account(
        name=name,
        kind=kind,
        ipm=_limit(where, item, "ipm"),
        rpm=_limit(where, item, "rpm"),
        max_inflight=_limit(where, item, "max_inflight"),
        base_url=url,
        api_key=key,
        api_key_env=key_env,
        models=_models(where, item.get("models"), catalogue),
        deployments=_deployments(where, item.get("deployments"), kind),
        api_version=_version(where, item.get("api_version", DEFAULT_AZURE_VERSION)),
        price_factor=_price(where, item.get("price_factor", 1.0)),
    )


def _url(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s@/?#]+(/[^\s?#]*)?", value.strip()):
        raise AccountsError(f"{where}.{name} must be an http(s) URL without credentials or query")
    return value.strip().rstrip("/")


def _limit(where: str, item: dict[str, Any], name: str) -> int:
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000_000:
        raise AccountsError(f"{where}.{name} must be a positive whole number")
    return value


def _models(where: str, value: Any, catalogue: Catalogue) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value):
        raise AccountsError(f"{where}.models must be a non-empty list of model names")
    names = set()
    for model in value:
        name = catalogue.canonical(model)
        if name is None:
            known = ", ".join(sorted(catalogue.models))
            raise AccountsError(f"{where}.models: {model!r} is not in the catalogue ({known})")
        names.add(name)
    return frozenset(names)


def _deployments(where: str, value: Any, kind: str) -> dict[str, str]:
    if value is None:
        return {}
    if kind != "azure":
        raise AccountsError(f"{where}.deployments applies to Azure accounts only")
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[\w.-]{1,64}", v)
        for k, v in value.items()
    ):
        raise AccountsError(f"{where}.deployments must map model names to deployment names")
    return dict(value)


def _version(where: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[\w.-]{1,40}", value):
        raise AccountsError(f"{where}.api_version must be an Azure API version like 2025-04-01-preview")
    return value


def _price(where: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise AccountsError(f"{where}.price_factor must be a positive number")
    return float(value)
