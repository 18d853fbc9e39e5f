"""EDITQ_REDIS_URL: the sentinel:// grammar, what kombu is given, and clear refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from editq.redis_target import RedisTarget, RedisURLError, parse
from editq.settings import Settings


def test_a_plain_url_passes_through() -> None:
    target = parse("redis://:pw@127.0.0.1:6380/3")
    assert target == RedisTarget(url="redis://:pw@127.0.0.1:6380/3")
    assert not target.is_sentinel
    assert target.broker_url() == "redis://:pw@127.0.0.1:6380/3"
    assert target.broker_transport_options() == {}
    assert target.redacted() == "redis://:***@127.0.0.1:6380/3"


def test_sentinels_service_db_and_passwords() -> None:
    target = parse("sentinel://app:p%40ss@s1:26380,10.0.0.2,[::1]:26381/mymaster/2?sentinel_password=s3cret")
    assert target.sentinels == (("s1", 26380), ("10.0.0.2", 26379), ("::1", 26381))
    assert (target.service, target.db) == ("mymaster", 2)
    assert (target.username, target.password) == ("app", "p@ss")
    assert target.sentinel_kwargs() == {"password": "s3cret"}
    assert "p@ss" not in target.redacted()
    assert "p@ss" not in repr(target)
    assert "s3cret" not in repr(target)
    assert "s3cret" not in target.redacted()
    assert (
        target.redacted()
        == "sentinel://app:***@s1:26380,10.0.0.2:26379,[::1]:26381/mymaster/2?sentinel_password=***"
    )


def test_defaults_without_credentials_or_db() -> None:
    target = parse("sentinel://localhost/svc")
    assert target.sentinels == (("localhost", 26379),)
    assert (target.db, target.password, target.sentinel_password) == (0, None, None)
    assert parse("sentinel://a:1/svc/").db == 0


def test_what_kombu_is_given() -> None:
    target = parse("sentinel://:p%40ss@h1:1,h2/svc/2?sentinel_password=x&sentinel_username=u")
    assert target.broker_url() == "sentinel://:p%40ss@h1:1/2;sentinel://:p%40ss@h2:26379/2"
    assert target.broker_transport_options(timeout=3) == {
        "master_name": "svc",
        "sentinel_kwargs": {
            "username": "u",
            "password": "x",
            "socket_timeout": 3,
            "socket_connect_timeout": 3,
        },
    }


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("127.0.0.1:6379", "needs a scheme"),
        ("http://h/svc", "unknown scheme"),
        ("sentinel://", "service name is missing"),
        ("sentinel://h:26379", "service name is missing"),
        ("sentinel://h:26379/", "service name is missing"),
        ("sentinel:///svc", "no Sentinel"),
        ("sentinel://h1,,h2/svc", "Sentinel 2 is empty"),
        ("sentinel://h1,/svc", "Sentinel 2 is empty"),
        ("sentinel://h:/svc", "port after ':' is empty"),
        ("sentinel://h:0/svc", "not a number from 1 to 65535"),
        ("sentinel://h:65536/svc", "not a number from 1 to 65535"),
        ("sentinel://h:-1/svc", "not a number from 1 to 65535"),
        ("sentinel://h:2a/svc", "not a number from 1 to 65535"),
        ("sentinel://h:١٢/svc", "not a number from 1 to 65535"),
        ("sentinel://h:99999999999999999999/svc", "not a number from 1 to 65535"),
        ("sentinel://h:1:2/svc", "not a number from 1 to 65535"),
        ("sentinel://h_1!/svc", "not a host name"),
        ("sentinel://-h/svc", "not a host name"),
        ("sentinel://[::1/svc", "IPv6"),
        ("sentinel://[zz]:1/svc", "IPv6"),
        ("sentinel://[::1]x/svc", "expected ':PORT'"),
        ("sentinel://h,h/svc", "named twice"),
        ("sentinel://h:26379,h/svc", "named twice"),
        ("sentinel://h/sv c", "spaces or control"),
        ("sentinel://h/svc\n", "spaces or control"),
        ("sentinel://h/svc\x00", "spaces or control"),
        ("sentinel://h/sv$c", "service name"),
        ("sentinel://h/svc/x", "database"),
        ("sentinel://h/svc/1/2", "database"),
        ("sentinel://h/svc/-1", "database"),
        ("sentinel://h/svc/100000", "database"),
        ("sentinel://h/svc/2000", "database"),
        ("sentinel://h/svc#frag", "fragment"),
        ("sentinel://pw@h/svc", "colon is missing"),
        ("sentinel://user:@h/svc", "password before '@' is empty"),
        ("sentinel://:%ff@h/svc", "percent-encoded"),
        ("sentinel://h/svc?password=x", "unknown query key"),
        ("sentinel://h/svc?sentinel_password=", "is empty"),
        ("sentinel://h/svc?sentinel_password=a&sentinel_password=b", "given twice"),
        ("sentinel://h/svc?sentinel_password", "query is malformed"),
        ("sentinel://" + ",".join(f"h{i}" for i in range(40)) + "/svc", "more than 32"),
    ],
)
def test_malformed_urls_get_a_clear_error(url: str, says: str) -> None:
    with pytest.raises(RedisURLError, match=says):
        parse(url)


def test_settings_refuse_a_malformed_url_without_echoing_the_password() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(redis_url="sentinel://:hunter2secret@h:99999/svc")
    assert "65535" in str(refused.value)
    assert "hunter2secret" not in str(refused.value)


def test_settings_wait_timeout_must_be_below_the_api_timeout() -> None:
    with pytest.raises(ValidationError, match="EDITQ_REDIS_WAIT_TIMEOUT_MS"):
        Settings(redis_wait_replicas=1, redis_wait_timeout_ms=1000, api_redis_timeout_seconds=1.0)
    assert Settings(redis_wait_replicas=1, redis_wait_timeout_ms=200).redis_wait_replicas == 1


@given(st.text(max_size=120))
def test_any_text_parses_or_is_refused_clearly(text: str) -> None:
    for url in (text, f"sentinel://{text}", f"sentinel://h/{text}", f"sentinel://{text}@h:1/svc"):
        try:
            target = parse(url)
        except RedisURLError:
            continue
        if target.is_sentinel:
            assert target.sentinels
            assert target.service
            assert all(0 < port < 65536 for _, port in target.sentinels)
            # credentials are quoted: one kombu URL per Sentinel, whatever the password holds
            assert len(target.broker_url().split(";")) == len(target.sentinels)
