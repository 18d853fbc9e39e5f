"""The `editq` commands that call the API over HTTP, through `editq.client`: `submit`,
`estimate`, `status`, `list`, `cancel`, `download`, `usage`.

Their parsers are built here with argparse alone; each command's module (and with it httpx,
pydantic and rich) is imported only when the command runs, so `editq worker` starts no slower.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

#: Job states, for `--status`.
STATUSES = ("queued", "running", "succeeded", "failed", "canceled", "expired")


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        command: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(f"editq.tools.commands.{module}"), name
        )
        return command(args)

    return run


def _connection(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    p.add_argument("--api", help="API base URL (default: EDITQ_API_URL, else the local API)")
    p.add_argument("--key", help="API key (default: EDITQ_API_KEY, else .editq/dev-api-key)")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")


def _edit_options(p: argparse.ArgumentParser) -> None:
    """The fields of an edit, shared by `submit` and `estimate`."""
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (submit: or a folder)")
    p.add_argument("--prompt", required=True)
    p.add_argument("--mask", help="a PNG with alpha, the size of the first image")
    p.add_argument("--model")
    p.add_argument("--n", type=int, help="outputs, 1-10")
    p.add_argument("--size", help="1024x1024, 1536x1024, 1024x1536, auto (WxH on gpt-image-2)")
    p.add_argument("--aspect-ratio", help="match_input or W:H")
    p.add_argument("--output-size", choices=["input"], help="outputs at the first image's size")
    p.add_argument("--strength", choices=["low", "medium", "high"])
    p.add_argument("--quality", choices=["low", "medium", "high", "auto"])
    p.add_argument("--output-format", choices=["png", "jpeg", "webp"])
    p.add_argument("--output-compression", type=int, help="0-100 (jpeg, webp)")
    p.add_argument("--background", choices=["transparent", "opaque", "auto"])
    p.add_argument("--input-fidelity", choices=["low", "high"])
    p.add_argument("--priority", help="interactive (default) or batch")
    p.add_argument("--max-cost-usd", help="refuse if the estimate is above this")
    p.add_argument("--metadata", help='a JSON object echoed on the job, e.g. \'{"sku": "A1"}\'')
    p.add_argument("--webhook-url")
    p.add_argument("--webhook-events", help="comma separated, e.g. edit.succeeded,edit.failed")
    p.add_argument("--no-reuse", action="store_true", help="never reuse an identical earlier job")
    p.add_argument("--user", help="end-user id passed to the provider")


def add_client_commands(sub: Subcommands) -> None:
    """`submit`, `estimate`, `status`, `list`, `cancel`, `download` and `usage`."""
    p = sub.add_parser("submit", help="submit images (files: one job; a folder: a batch, one job per image)")
    _edit_options(p)
    p.add_argument("--wait", action="store_true", help="wait for the results")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait at most (with --wait)")
    p.add_argument("--out", help="folder to save outputs into (with --wait)")
    p.add_argument("--cancel-after", help="expire the job if not started by then: 90, 1h30m")
    p.add_argument("--idempotency-key", help="default: a new one for this submit")
    _connection(p)
    p.set_defaults(func=_lazy("edits", "submit"))

    p = sub.add_parser("estimate", help="what a submit would run and cost (stores nothing)")
    _edit_options(p)
    _connection(p)
    p.set_defaults(func=_lazy("edits", "estimate"))

    p = sub.add_parser("status", help="show a job")
    p.add_argument("id")
    _connection(p)
    p.set_defaults(func=_lazy("jobs", "status"))

    p = sub.add_parser("list", help="the tenant's jobs, newest first")
    p.add_argument("--status", help=f"comma separated among {', '.join(STATUSES)}")
    p.add_argument("--since", help="created after: an ISO time or date, unix seconds, or an age: 30m, 2h, 7d")
    p.add_argument("--until", help="created before (same forms as --since)")
    p.add_argument("--limit", type=int, default=20, help="jobs to show, 1-200 (default 20)")
    p.add_argument("--cursor", help="the next page: the cursor a previous `editq list` printed")
    _connection(p)
    p.set_defaults(func=_lazy("jobs", "listing"))

    p = sub.add_parser("cancel", help="cancel a job that has not finished")
    p.add_argument("id")
    _connection(p)
    p.set_defaults(func=_lazy("jobs", "cancel"))

    p = sub.add_parser("download", help="save a job's outputs")
    p.add_argument("id")
    p.add_argument("--out", default=".", help="folder (default: the current one)")
    p.add_argument("--wait", action="store_true", help="wait for the job to finish first")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait at most (with --wait)")
    _connection(p, json_flag=False)
    p.set_defaults(func=_lazy("jobs", "download"))

    p = sub.add_parser("usage", help="spend, reservations and budgets")
    p.add_argument("--from", dest="from_", help="first day, e.g. 2026-11-01 (default: the 1st)")
    p.add_argument("--to", help="last day (default: today)")
    p.add_argument("--group-by", choices=["day", "model"])
    _connection(p)
    p.set_defaults(func=_lazy("jobs", "usage"))
