"""Where editq's Redis is: `EDITQ_REDIS_URL`, parsed once into a `RedisTarget`.

Two forms are accepted:

    redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]      (also rediss:// and unix://; redis-py's own
                                                     grammar, passed through unchanged)
    sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/DB][?QUERY]

In the sentinel form each HOST:PORT is a Sentinel (port 26379 by default; an IPv6 address goes
in brackets), SERVICE is the name the Sentinels monitor (`sentinel monitor SERVICE ...`), DB the
database number (0 by default). USER and PASSWORD are those of the Redis master and its
replicas (percent-encode `@ : / , ? #` in them). QUERY may hold `sentinel_password` and
`sentinel_username`, when the Sentinels themselves ask for AUTH; nothing else.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

#: Port of a Sentinel when the URL names none.
SENTINEL_PORT = 26379
#: The query keys the sentinel form accepts.
SENTINEL_QUERY = ("sentinel_password", "sentinel_username")
#: Most Sentinels one URL may name.
MAX_SENTINELS = 32
#: Highest database number accepted (Redis' default `databases 16`; some run more).
MAX_DB = 1023
_SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,252}")
_PLAIN_SCHEMES = ("redis", "rediss", "unix")


class RedisURLError(ValueError):
    """`EDITQ_REDIS_URL` is malformed; the message says where, never with the password."""


@dataclass(frozen=True)
class RedisTarget:
    """One Redis server (`url`), or a master found through Sentinels (`sentinels`, `service`)."""

    url: str = field(repr=False)  # may hold a password: `redacted()` is for showing
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)

    def redacted(self) -> str:
        """The URL without its passwords, for logs and banners."""
        if not self.is_sentinel:
            return _redact(self.url)
        hosts = ",".join(_host_port(h, p) for h, p in self.sentinels)
        user = f"{self.username or ''}:***@" if self.password else ""
        query = "?sentinel_password=***" if self.sentinel_password else ""
        return f"sentinel://{user}{hosts}/{self.service}/{self.db}{query}"

    def sentinel_kwargs(self) -> dict[str, str]:
        """redis-py's `sentinel_kwargs`: the credentials for the Sentinels themselves."""
        found = {"username": self.sentinel_username, "password": self.sentinel_password}
        return {k: v for k, v in found.items() if v}

    def broker_url(self) -> str:
        """The URL kombu takes: a plain one unchanged, or one `sentinel://` URL per Sentinel
        joined by `;` (each carrying the master's credentials and the database)."""
        if not self.is_sentinel:
            return self.url
        auth = ""
        if self.password:
            auth = f"{_quote(self.username or '')}:{_quote(self.password)}@"
        return ";".join(f"sentinel://{auth}{_host_port(h, p)}/{self.db}" for h, p in self.sentinels)

    def broker_transport_options(self, timeout: float = 5.0) -> dict[str, object]:
        """kombu's Sentinel transport options (empty for a plain URL): the service, and how to
        talk to the Sentinels (their credentials; `timeout` seconds to connect and to answer)."""
        if not self.is_sentinel:
            return {}
        talk = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        return {"master_name": self.service, "sentinel_kwargs": {**self.sentinel_kwargs(), **talk}}


def parse(url: str) -> RedisTarget:
    """The target `url` names; `RedisURLError` saying what is wrong when it is malformed."""
    if not isinstance(url, str) or not url.strip():
        raise RedisURLError("EDITQ_REDIS_URL is empty")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise RedisURLError("EDITQ_REDIS_URL has spaces or control characters")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise RedisURLError("EDITQ_REDIS_URL needs a scheme: redis://, rediss://, unix:// or sentinel://")
    scheme = scheme.lower()
    if scheme in _PLAIN_SCHEMES:
        return RedisTarget(url=url)
    if scheme != "sentinel":
        raise RedisURLError(
            f"EDITQ_REDIS_URL: unknown scheme {scheme[:20]!r} (redis, rediss, unix or sentinel)"
        )
    return _parse_sentinel(rest)


def _parse_sentinel(rest: str) -> RedisTarget:
    rest, _, fragment = rest.partition("#")
    if fragment:
        raise RedisURLError("sentinel URL: no #fragment allowed")
    rest, _, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    if not slash or not path:
        raise RedisURLError(
            "sentinel URL: the service name is missing (sentinel://HOST:PORT,.../SERVICE[/DB])"
        )
    userinfo, at, hosts = authority.rpartition("@")
    username, password = _userinfo(userinfo) if at else (None, None)
    sentinels = _sentinels(hosts)
    service, db = _service_and_db(path)
    sentinel_username, sentinel_password = _query(query)
    return RedisTarget(
        url=f"sentinel://{rest}",
        sentinels=sentinels,
        service=service,
        db=db,
        username=username,
        password=password,
        sentinel_username=sentinel_username,
        sentinel_password=sentinel_password,
    )


def _userinfo(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    if not colon:
        raise RedisURLError("sentinel URL: credentials are [USER]:PASSWORD@ (the colon is missing)")
    try:
        user, password = _unquote(user), _unquote(password)
    except UnicodeDecodeError:
        raise RedisURLError("sentinel URL: the credentials are not valid percent-encoded UTF-8") from None
    if not password:
        raise RedisURLError("sentinel URL: the password before '@' is empty")
    return (user or None), password


def _sentinels(hosts: str) -> tuple[tuple[str, int], ...]:
    if not hosts:
        raise RedisURLError("sentinel URL: no Sentinel named (sentinel://HOST:PORT,.../SERVICE)")
    parts = hosts.split(",")
    if len(parts) > MAX_SENTINELS:
        raise RedisURLError(f"sentinel URL: more than {MAX_SENTINELS} Sentinels")
    found: list[tuple[str, int]] = []
    for index, part in enumerate(parts, 1):
        host, port = _host_and_port(part, index)
        if (host, port) in found:
            raise RedisURLError(f"sentinel URL: Sentinel {index} is named twice")
        found.append((host, port))
    return tuple(found)


def _host_and_port(part: str, index: int) -> tuple[str, int]:
    where = f"sentinel URL: Sentinel {index}"
    if not part:
        raise RedisURLError(f"{where} is empty (a stray comma?)")
    if part.startswith("["):
        host, close, tail = part[1:].partition("]")
        if not close or not re.fullmatch(r"[0-9A-Fa-f:.]+", host or "-"):
            raise RedisURLError(f"{where}: a bracketed IPv6 address is malformed")
        if tail and not tail.startswith(":"):
            raise RedisURLError(f"{where}: expected ':PORT' after the IPv6 address")
        port_text = tail[1:] if tail else ""
    else:
        host, colon, port_text = part.partition(":")
        if colon and not port_text:
            raise RedisURLError(f"{where}: the port after ':' is empty")
        if not _HOST.fullmatch(host):
            raise RedisURLError(f"{where}: {host[:40]!r} is not a host name or address")
    if not port_text:
        return host, SENTINEL_PORT
    if (
        not port_text.isascii()
        or not port_text.isdigit()
        or len(port_text) > 5
        or not 0 < int(port_text) < 65536
    ):
        raise RedisURLError(f"{where}: the port {port_text[:10]!r} is not a number from 1 to 65535")
    return host, int(port_text)


def _service_and_db(path: str) -> tuple[str, int]:
    service, _, db_text = path.partition("/")
    if not _SERVICE.fullmatch(service):
        raise RedisURLError(
            f"sentinel URL: the service name {service[:40]!r} must be letters, digits, '_', '-' or '.'"
        )
    db_text = db_text.removesuffix("/")
    if not db_text:
        return service, 0
    if not db_text.isascii() or not db_text.isdigit() or len(db_text) > 4 or int(db_text) > MAX_DB:
        raise RedisURLError(f"sentinel URL: the database {db_text[:10]!r} is not a number from 0 to {MAX_DB}")
    return service, int(db_text)


def _query(query: str) -> tuple[str | None, str | None]:
    if not query:
        return None, None
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise RedisURLError("sentinel URL: the query is malformed (KEY=VALUE&...)") from None
    found: dict[str, str] = {}
    for key, value in pairs:
        if key not in SENTINEL_QUERY:
            raise RedisURLError(
                f"sentinel URL: unknown query key {key[:30]!r} (accepted: {', '.join(SENTINEL_QUERY)})"
            )
        if key in found:
            raise RedisURLError(f"sentinel URL: {key} is given twice")
        if not value:
            raise RedisURLError(f"sentinel URL: {key} is empty")
        found[key] = value
    return found.get("sentinel_username"), found.get("sentinel_password")


def _unquote(text: str) -> str:
    return urllib.parse.unquote(text, errors="strict")


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{hosts}{slash}{tail}"
