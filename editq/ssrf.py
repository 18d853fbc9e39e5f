"""Webhook URLs that may not reach inside the network (SSRF guard).

A URL is checked when a job is submitted and again when each delivery connects: the host is
resolved once, every address it resolves to must be public, and the connection goes to one of
those checked addresses (so a DNS answer that changes in between cannot redirect it).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from editq.errors import InvalidRequest

Resolver = Callable[[str, int], list[str]]
MAX_URL_LENGTH = 2048
#: Ranges that are not covered by `ipaddress`'s is_private/is_global flags on every Python.
_BLOCKED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "192.0.0.0/24",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
        "fd00:ec2::254/128",
    )
)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(text: str) -> bool:
    """False for private, loopback, link-local, multicast, reserved and metadata addresses."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None and not is_public(str(embedded)):
            return False
    if any(address in net for net in _BLOCKED if net.version == address.version):
        return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def check_url(
    url: str,
    *,
    allow_private: bool,
    allow_http: bool,
    resolve: Resolver = system_resolver,
    param: str = "webhook_url",
) -> Target:
    """Refuse a webhook URL that is malformed, not https, or reaches a non-public address."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest("invalid_webhook_url", "webhook_url is too long", param)
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidRequest(
            "invalid_webhook_url", "webhook_url must not contain spaces or control characters (CR, LF)", param
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidRequest("invalid_webhook_url", "webhook_url is not a valid URL", param) from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise InvalidRequest("invalid_webhook_url", "webhook_url must be an absolute https URL", param)
    if scheme == "http" and not allow_http:
        raise InvalidRequest("webhook_url_not_https", "webhook_url must use https", param)
    if parts.username or parts.password:
        raise InvalidRequest("invalid_webhook_url", "webhook_url must not carry credentials", param)
    host = parts.hostname
    port = port or (443 if scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        raise InvalidRequest(
            "webhook_host_unresolvable", f"webhook_url host {host!r} does not resolve", param
        ) from None
    if not addresses:
        raise InvalidRequest(
            "webhook_host_unresolvable", f"webhook_url host {host!r} does not resolve", param
        )
    if not allow_private:
        blocked = [a for a in addresses if not is_public(a)]
        if blocked:
            raise InvalidRequest(
                "webhook_url_not_public",
                f"webhook_url resolves to a non-public address ({blocked[0]})",
                param,
            )
    return Target(url=url, scheme=scheme, host=host, port=port, address=addresses[0])
