"""Webhook URLs that would reach inside the network are refused; signatures verify with the
`standardwebhooks` package."""

from __future__ import annotations

import base64
import json
import time

import pytest
from standardwebhooks import Webhook

from editq import signing, ssrf
from editq.errors import EditqError

PRIVATE = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.0.1",
    "0.0.0.0",
    "100.64.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",
    "2002:0a00:0001::1",
    "ff02::1",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "1.1.1.1"]


@pytest.mark.parametrize("address", PRIVATE)
def test_non_public_addresses(address: str) -> None:
    assert not ssrf.is_public(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert ssrf.is_public(address)


def _resolver(*answers: str) -> ssrf.Resolver:
    return lambda host, port: list(answers)


@pytest.mark.parametrize("address", PRIVATE)
def test_hostname_resolving_to_a_private_address_is_refused(address: str) -> None:
    with pytest.raises(EditqError) as refused:
        ssrf.check_url(
            "https://hooks.example.com/x", allow_private=False, allow_http=False, resolve=_resolver(address)
        )
    assert refused.value.code == "webhook_url_not_public"


def test_one_private_answer_among_public_ones_is_enough_to_refuse() -> None:
    with pytest.raises(EditqError):
        ssrf.check_url(
            "https://h.example/x",
            allow_private=False,
            allow_http=False,
            resolve=_resolver("8.8.8.8", "10.1.1.1"),
        )


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://h.example/x", "webhook_url_not_https"),
        ("ftp://h.example/x", "invalid_webhook_url"),
        ("https://user:pw@h.example/x", "invalid_webhook_url"),
        ("https:///nohost", "invalid_webhook_url"),
        ("https://h.example:99999/x", "invalid_webhook_url"),
        ("https://" + "a" * 3000 + ".example/", "invalid_webhook_url"),
        ("not a url", "invalid_webhook_url"),
    ],
)
def test_malformed_urls(url: str, code: str) -> None:
    with pytest.raises(EditqError) as refused:
        ssrf.check_url(url, allow_private=False, allow_http=False, resolve=_resolver("8.8.8.8"))
    assert refused.value.code == code


def test_unresolvable_host() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(EditqError) as refused:
        ssrf.check_url("https://nope.invalid/", allow_private=False, allow_http=False, resolve=fail)
    assert refused.value.code == "webhook_host_unresolvable"


def test_checked_target_pins_the_address() -> None:
    target = ssrf.check_url(
        "https://h.example:8443/p?q=1", allow_private=False, allow_http=False, resolve=_resolver("8.8.4.4")
    )
    assert (target.host, target.port, target.address, target.scheme) == (
        "h.example",
        8443,
        "8.8.4.4",
        "https",
    )
    allowed = ssrf.check_url(
        "http://localhost:9/x", allow_private=True, allow_http=True, resolve=_resolver("127.0.0.1")
    )
    assert allowed.address == "127.0.0.1"


def test_signatures_verify_with_standardwebhooks() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    old = "whsec_" + base64.b64encode(b"o" * 32).decode()
    body = json.dumps(
        {"type": "edit.succeeded", "timestamp": "2026-11-25T00:00:00Z", "data": {"id": "edit_1"}}
    ).encode()
    now = int(time.time())
    header = signing.signature_header([secret, old], "msg_1", now, body)
    assert header.count("v1,") == 2
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": header}
    assert Webhook(secret).verify(body, headers)["data"]["id"] == "edit_1"
    assert Webhook(old).verify(body, headers)["type"] == "edit.succeeded"
    assert signing.verify(secret, "msg_1", now, body, header)
    assert not signing.verify(secret, "msg_2", now, body, header)
