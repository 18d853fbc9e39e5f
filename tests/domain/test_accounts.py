"""EDITQ_PROVIDER_ACCOUNTS: the pool's parsing and its refusals, each with its own clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from editq import catalogue
from editq.accounts import DEFAULT_ACCOUNT, AccountsError, load
from editq.settings import Settings

ENV = {"KEY_A": "sk-a", "KEY_B": "sk-b"}


def _account(**changes: Any) -> dict[str, Any]:
    base = {
        "name": "a",
        "kind": "openai",
        "base_url": "https://api.openai.com/v1",
        "api_key_env": "KEY_A",
        "models": ["gpt-image-1-mini"],
        "ipm": 250,
        "rpm": 250,
        "max_inflight": 32,
    }
    return {k: v for k, v in (base | changes).items() if v is not None}


def _load(data: Any) -> Any:
    return load(data if isinstance(data, str) else json.dumps(data), ENV, catalogue.load())


def test_a_pool_of_openai_and_azure_accounts() -> None:
    azure = _account(
        name="eu-azure",
        kind="azure",
        base_url=None,
        endpoint="https://eu.openai.azure.com",
        deployments={"gpt-image-1": "img1"},
        api_key_env="KEY_B",
        models=["gpt-image-1"],
        price_factor=0.9,
    )
    a, b = _load([_account(), azure])
    assert (a.name, a.kind, a.base_url, a.api_key, a.models) == (
        "a",
        "openai",
        "https://api.openai.com/v1",
        "sk-a",
        frozenset({"gpt-image-1-mini"}),
    )
    assert (b.kind, b.base_url, b.deployments, b.price_factor) == (
        "azure",
        "https://eu.openai.azure.com",
        {"gpt-image-1": "img1"},
        0.9,
    )
    assert b.serves("gpt-image-1")
    assert not b.serves("gpt-image-1-mini")
    assert "sk-b" not in repr(b)


def test_unset_or_blank_is_the_one_account_shorthand() -> None:
    assert load(None, ENV, catalogue.load()) is None
    assert load("  ", ENV, catalogue.load()) is None
    s = Settings.from_env(
        {"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://sim/v1", "EDITQ_PROVIDER_IPM": "7"}
    )
    (only,) = s.accounts
    assert (only.name, only.base_url, only.api_key, only.ipm, only.models) == (
        DEFAULT_ACCOUNT,
        "http://sim/v1",
        "sk-x",
        7,
        None,
    )


def test_settings_read_the_pool_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps([_account(), _account(name="b", api_key_env="KEY_B")]))
    s = Settings.from_env({**ENV, "EDITQ_PROVIDER_ACCOUNTS": f"@{path}"})
    assert [a.name for a in s.accounts] == ["a", "b"]
    assert s.account("b") is not None
    assert s.account("c") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[not json", "is not valid JSON"),
        ("[" * 100_000, "is not valid JSON"),
        ({"name": "a"}, "must be a non-empty JSON list"),
        ([], "must be a non-empty JSON list"),
        (["a"], "[0] must be a JSON object"),
        ([_account(name="A B")], "[0].name must be 1-32 lowercase"),
        ([_account(name="../etc")], "[0].name must be 1-32 lowercase"),
        ([_account(name="x" * 33)], "[0].name must be 1-32 lowercase"),
        ([_account(), _account()], "the name 'a' is used twice"),
        ([_account(kind="gemini")], "[a].kind must be one of openai, azure"),
        ([_account(api_key="sk-live")], "holds a key ('api_key'): keys never go in the list"),
        ([_account(api_key_env="UNSET_KEY_VAR")], "names UNSET_KEY_VAR, which is not set"),
        ([_account(api_key_env="sk-abc")], "[a].api_key_env must name an environment variable"),
        ([_account(models=["dall-e-9"])], "'dall-e-9' is not in the catalogue"),
        ([_account(models=[])], "[a].models must be a non-empty list"),
        ([_account(ipm=0)], "[a].ipm must be a positive whole number"),
        ([_account(rpm=-5)], "[a].rpm must be a positive whole number"),
        ([_account(max_inflight="32")], "[a].max_inflight must be a positive whole number"),
        ([_account(ipm=True)], "[a].ipm must be a positive whole number"),
        ([_account(base_url="ftp://x")], "[a].base_url must be an http(s) URL"),
        ([_account(base_url="https://user:pw@host/v1")], "[a].base_url must be an http(s) URL"),
        ([_account(kind="azure")], "[a].endpoint must be an http(s) URL"),
        ([_account(deployments={"gpt-image-1": "x"})], "deployments applies to Azure accounts only"),
        ([_account(price_factor=float("nan"))], "[a].price_factor must be a positive number"),
        ([_account(colour="red")], "unknown field 'colour'"),
        ("@/nonexistent/accounts.json", "cannot read /nonexistent/accounts.json"),
    ],
)
def test_broken_or_hostile_pools_are_refused_clearly(data: Any, message: str) -> None:
    with pytest.raises(AccountsError) as caught:
        _load(data)
    assert message in str(caught.value)
    assert "sk-" not in str(caught.value).replace("'sk-abc'", "")


def test_settings_fail_fast_on_a_bad_pool() -> None:
    with pytest.raises(ValidationError, match="which is not set"):
        Settings.from_env({"EDITQ_PROVIDER_ACCOUNTS": json.dumps([_account(api_key_env="NOPE")])})


def test_the_economy_lane_runs_on_the_first_openai_account() -> None:
    azure = _account(
        name="az", kind="azure", base_url=None, endpoint="https://eu.openai.azure.com", api_key_env="KEY_B"
    )
    pool = [azure, _account(name="p1"), _account(name="p2", api_key_env="KEY_B")]
    s = Settings.from_env({**ENV, "EDITQ_PROVIDER_ACCOUNTS": json.dumps(pool)})
    assert s.economy_account is not None
    assert (s.economy_account.name, s.economy_available) == ("p1", True)
    only_azure = Settings.from_env({**ENV, "EDITQ_PROVIDER_ACCOUNTS": json.dumps([azure])})
    assert (only_azure.economy_account, only_azure.economy_available) == (None, False)
    off = Settings.from_env({**ENV, "EDITQ_PROVIDER_ACCOUNTS": json.dumps(pool), "EDITQ_ECONOMY": "false"})
    assert not off.economy_available
    shorthand = Settings.from_env({"OPENAI_API_KEY": "sk-x"})
    assert shorthand.economy_account is not None
    assert shorthand.economy_account.name == DEFAULT_ACCOUNT
    azure_shorthand = Settings.from_env(
        {
            "EDITQ_PROVIDER": "azure",
            "AZURE_OPENAI_API_KEY": "k",
            "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com",
        }
    )
    assert not azure_shorthand.economy_available
