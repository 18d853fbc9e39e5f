"""What the deployment files (docker-compose.yml, ops/k8s/) are checked against: the settings
editq reads, the `editq` command line and the routes of the API."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import AliasChoices
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from editq.api.app import create_app
from editq.settings import Settings
from editq.tools import cli

#: Variables a container may set that are not editq settings: Flower reads its own.
FOREIGN = {"FLOWER_BASIC_AUTH"}

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def setting_names() -> set[str]:
    """Every environment variable the settings object reads."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
    return names


def unknown_variables(names: Iterable[str]) -> set[str]:
    """The names among `names` that neither editq nor Flower reads."""
    return set(names) - setting_names() - FOREIGN


def seconds(duration: str | int | float) -> float:
    """A compose duration (`4m`, `240s`, `1m30s`) or a number of seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    parts = _DURATION.findall(duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    assert parts, duration
    return sum(float(number) * _UNIT[unit] for number, unit in parts)


def editq_command(argv: list[str]) -> str:
    """The subcommand an `editq ...` argv runs, after checking that the command line parses."""
    assert argv[0] == "editq", argv
    args = cli.parser().parse_args(argv[1:])
    return str(args.command)


def api_paths() -> set[str]:
    """The paths the API serves: its documented routes, the docs and the studio."""
    app = create_app(Settings())
    paths = set(app.openapi()["paths"])
    paths |= {route.path for route in app.routes if isinstance(route, Route | Mount)}
    client = TestClient(app)
    for page in ("/", "/docs"):  # the studio's page and the docs', outside the schema
        if client.get(page).status_code == 200:
            paths.add(page)
    return paths


def flower_paths() -> set[str]:
    """The paths Flower serves (its URL patterns, anchors dropped)."""
    from flower.urls import handlers

    patterns = (spec.regex.pattern if hasattr(spec, "regex") else spec[0] for spec in handlers)
    return {str(pattern).rstrip("$") for pattern in patterns}
