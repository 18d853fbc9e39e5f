"""`editq status`, `list`, `cancel`, `download` and `usage`."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta

from editq.client import Client, EditJob
from editq.tools.commands import render
from editq.tools.commands.common import console, fail, line, print_json, uses_client

_AGE = re.compile(r"^(\d+)([smhd])$", re.ASCII)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
#: Largest page of `GET /v1/edits`.
PAGE_MAX = 200


def created(value: str | None, now: datetime | None = None) -> str | None:
    """`--since`/`--until` for the API: an age (`2h`) becomes the time that long ago; an ISO time
    or unix seconds go as given (the API checks them)."""
    if value is None:
        return None
    age = _AGE.match(value.strip())
    if age is None:
        return value.strip()
    moment = (now or datetime.now(UTC)) - timedelta(**{_UNITS[age[2]]: int(age[1])})
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _show(args: argparse.Namespace, job: EditJob) -> None:
    if args.json:
        print_json(job.raw)
    else:
        console().print(render.job_table(job))


@uses_client
def status(args: argparse.Namespace, client: Client) -> int:
    _show(args, client.get(args.id))
    return 0


@uses_client
def listing(args: argparse.Namespace, client: Client) -> int:
    if not 1 <= args.limit <= PAGE_MAX:
        return fail(f"--limit is 1 to {PAGE_MAX}")
    page = client.list_page(
        status=args.status,
        created_after=created(args.since),
        created_before=created(args.until),
        cursor=args.cursor,
        limit=args.limit,
    )
    if args.json:
        print_json(page.raw)
        return 0
    console().print(render.jobs_table(page.data))
    if page.has_more and page.next_cursor:
        sys.stderr.write(f"more: editq list --cursor {page.next_cursor}\n")
    return 0


@uses_client
def cancel(args: argparse.Namespace, client: Client) -> int:
    _show(args, client.cancel(args.id))
    return 0


@uses_client
def download(args: argparse.Namespace, client: Client) -> int:
    job = client.wait(args.id, timeout=args.timeout) if args.wait else client.get(args.id)
    for path in client.download(job, args.out):
        line(str(path))
    return 0


@uses_client
def usage(args: argparse.Namespace, client: Client) -> int:
    answer = client.usage(from_=args.from_, to=args.to, group_by=args.group_by)
    if args.json:
        print_json(answer.raw)
        return 0
    out = console()
    for table in render.usage_tables(answer):
        out.print(table)
    return 0
