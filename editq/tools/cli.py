"""The `editq` command: client of the API, admin of tenants and keys, and the service launcher."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _fail(text: str, code: int = 1) -> int:
    sys.stderr.write(f"editq: {text}\n")
    return code


def _usd(value: str | None) -> int | None:
    from editq.options import usd_to_micros

    return None if value is None else usd_to_micros(value, "budget")


class Progress:
    """A progress bar on stderr; plain lines when stderr is not a terminal."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def advance(self, step: int = 1) -> None:
        self.done += step
        now = time.monotonic()
        if self.tty:
            width = 30
            filled = int(width * self.done / max(1, self.total))
            sys.stderr.write(
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
            )
            if self.done >= self.total:
                sys.stderr.write("\n")
        elif self.done >= self.total or now - self.last > 2:
            sys.stderr.write(f"{self.label}: {self.done}/{self.total}\n")
            self.last = now
        sys.stderr.flush()


def _client(args: argparse.Namespace) -> Any:
    from editq.settings import get_settings
    from editq.tools.client import Client

    settings = get_settings()
    url = args.api or settings.client_api_url or settings.api_base_url
    key = args.key or (settings.client_api_key.get_secret_value() if settings.client_api_key else None)
    key = key or (settings.bootstrap_api_key.get_secret_value() if settings.bootstrap_api_key else None)
    if key is None:
        local = settings.state_dir / "dev-api-key"
        key = local.read_text().strip() if local.exists() else None
    if key is None:
        raise SystemExit("editq: set EDITQ_API_KEY or pass --key")
    return Client(url, key)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "model": args.model,
        "n": args.n,
        "size": args.size,
        "aspect_ratio": args.aspect_ratio,
        "strength": args.strength,
        "quality": args.quality,
        "output_format": args.output_format,
        "priority": args.priority,
        "webhook_url": args.webhook_url,
    }


def cmd_submit(args: argparse.Namespace) -> int:
    from editq.tools.client import ApiError

    paths = [Path(p) for p in args.images]
    missing = [p for p in paths if not p.exists()]
    if missing:
        return _fail(f"no such file or folder: {missing[0]}")
    files = _image_files(paths)
    if not files:
        return _fail("no images found")
    with _client(args) as client:
        try:
            jobs = _submit_files(client, files, paths, args)
        except ApiError as exc:
            return _fail(str(exc))
        if not args.wait:
            _print_submitted(jobs)
            return 0
        finished = _wait_for_jobs(client, jobs, args)
        _print_finished(finished)
        return 0 if all(j["status"] == "succeeded" for j in finished) else 2


def _image_files(paths: list[Path]) -> list[Path]:
    """The files named, and the images in the folders named (any file when only one is named)."""
    files = [f for p in paths for f in (sorted(p.iterdir()) if p.is_dir() else [p])]
    return [f for f in files if f.is_file() and (f.suffix.lower() in IMAGE_SUFFIXES or len(paths) == 1)]


def _submit_files(
    client: Any, files: list[Path], paths: list[Path], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """One job for all the files named, or a batch of one job per image when a folder is named."""
    if len(files) > 1 and any(p.is_dir() for p in paths):
        return _submit_folder(client, files, args)
    job = client.submit(
        files,
        args.prompt,
        mask=Path(args.mask) if args.mask else None,
        options=_options(args),
        idempotency_key=str(uuid.uuid4()),
    )
    return [job]


def _print_submitted(jobs: list[dict[str, Any]]) -> None:
    from editq.tools.client import dumps

    for job in jobs:
        _print(dumps(job) if len(jobs) == 1 else f"{job['id']} {job['status']}")


def _wait_for_jobs(client: Any, jobs: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each job once finished, its outputs downloaded into `--out` when it succeeded."""
    progress = Progress(len(jobs), "editing")
    finished = []
    for job in jobs:
        final = client.wait(job["id"], timeout=args.timeout)
        finished.append(final)
        progress.advance()
        if args.out and final["status"] == "succeeded":
            for path in client.download(final, Path(args.out)):
                _print(str(path))
    return finished


def _print_finished(finished: list[dict[str, Any]]) -> None:
    from editq.tools.client import dumps

    if len(finished) == 1:
        _print(dumps(finished[0]))
    else:
        for final in finished:
            _print(f"{final['id']} {final['status']}")


def _submit_folder(client: Any, files: list[Path], args: argparse.Namespace) -> list[dict[str, Any]]:
    progress = Progress(len(files), "uploading")
    items = []
    for path in files:
        image = client.upload(path)
        item = {
            "image_ids": [image["id"]],
            "prompt": args.prompt,
            **{k: v for k, v in _options(args).items() if v is not None},
        }
        items.append(item)
        progress.advance()
    jobs = []
    for start in range(0, len(items), 1000):
        answer = client.batch(items[start : start + 1000], idempotency_key=str(uuid.uuid4()))
        for result in answer["items"]:
            if "job" in result:
                jobs.append(result["job"])
            else:
                error = result["error"]
                sys.stderr.write(f"item {start + result['index']}: {error['code']}: {error['message']}\n")
    return jobs


def cmd_status(args: argparse.Namespace) -> int:
    from editq.tools.client import ApiError, dumps

    with _client(args) as client:
        try:
            _print(dumps(client.get(args.id)))
        except ApiError as exc:
            return _fail(str(exc))
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    from editq.tools.client import ApiError, dumps

    params = {k: v for k, v in {"from": args.from_, "to": args.to, "group_by": args.group_by}.items() if v}
    with _client(args) as client:
        try:
            _print(dumps(client.usage(**params)))
        except ApiError as exc:
            return _fail(str(exc))
    return 0


def _db() -> Any:
    from editq.settings import get_settings
    from editq.storage.backend import Backend

    return Backend.connect(get_settings())


def cmd_tenants(args: argparse.Namespace) -> int:
    from editq.storage import money, tenants
    from editq.tools.client import dumps

    db = _db()
    budgets = {
        "day": _usd(getattr(args, "budget_usd_day", None)),
        "month": _usd(getattr(args, "budget_usd_month", None)),
        "total": _usd(getattr(args, "budget_usd_total", None)),
    }
    try:
        if args.action == "create":
            tenant = tenants.create(
                db, args.name, weight=args.weight, max_running=args.max_running, budgets=budgets
            )
            _print(
                dumps({**tenant.public(), "webhook_secret": tenants.secrets_of(db, args.name)[0]["secret"]})
            )
        elif args.action == "update":
            changes: dict[str, int | None] = {k: v for k, v in budgets.items() if v is not None}
            for period in args.clear_budget or []:
                changes[period] = None
            tenant = tenants.update(
                db, args.name, weight=args.weight, max_running=args.max_running, budgets=changes
            )
            _print(dumps(tenant.public()))
        elif args.action == "show":
            found = tenants.get(db, args.name)
            if found is None:
                return _fail(f"no tenant {args.name!r}")
            _print(
                dumps(
                    {
                        **found.public(),
                        "keys": tenants.list_keys(db, args.name),
                        "webhook_secrets": tenants.secrets_of(db, args.name),
                        "budgets_now": money.budgets(db, args.name, found.budgets),
                        "disabled_webhook_urls": sorted(tenants.disabled_urls(db, args.name)),
                    }
                )
            )
        elif args.action == "list":
            for name in tenants.names(db):
                _print(name)
        elif args.action == "rotate-secret":
            _print(dumps(tenants.rotate_secret(db, args.name, db.settings.secret_overlap_seconds)))
    except tenants.TenantError as exc:
        return _fail(str(exc))
    finally:
        db.close()
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from editq.storage import tenants

    db = _db()
    try:
        if args.action == "create":
            _print(tenants.create_key(db, args.tenant))
            sys.stderr.write("editq: this key is shown once; store it now\n")
        elif args.action == "revoke":
            tenant = tenants.revoke_key(db, args.key)
            _print(f"revoked a key of {tenant}")
        elif args.action == "list":
            for key_id in tenants.list_keys(db, args.tenant):
                _print(f"eq_{key_id}_…")
    except tenants.TenantError as exc:
        return _fail(str(exc))
    finally:
        db.close()
    return 0


def cmd_provider(args: argparse.Namespace) -> int:
    from editq.storage import limiter
    from editq.tools.client import dumps

    db = _db()
    try:
        if args.action == "resume":
            limiter.resume(db)
        _print(dumps(limiter.state(db)))
    finally:
        db.close()
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    import uvicorn

    from editq.ops.sim.app import SimConfig, create_app

    low, _, high = (args.latency or "0").partition("-")
    config = SimConfig(
        rpm=args.rpm,
        ipm=args.ipm,
        latency_min=float(low),
        latency_max=float(high or low),
        fail_rate=args.fail_rate,
        hang_rate=args.hang_rate,
        api_key=args.api_key,
        rate_headers=args.rate_headers,
        start_full=not args.start_empty,
        seed=args.seed,
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models else None,
        clock_offset=args.clock_offset,
    )
    _print(f"editq simulator (not a generative model) on http://{args.host}:{args.port}/v1")
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from editq.logs import configure
    from editq.settings import get_settings

    settings = get_settings()
    configure(settings)
    uvicorn.run(
        "editq.api.app:create_app",
        factory=True,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's records go through editq's handler
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from editq.logs import configure
    from editq.settings import get_settings
    from editq.worker.app import EDITS, OPS, WEBHOOKS, app

    settings = get_settings()
    configure(settings)
    concurrency = args.concurrency or settings.worker_concurrency
    app.worker_main(
        [
            "--quiet",  # no banner on stdout: every line the worker writes is a log record
            "worker",
            "-P",
            "threads",
            "-c",
            str(concurrency),
            "-Q",
            ",".join([EDITS, WEBHOOKS, OPS]),
            *(["-E"] if settings.task_events else []),
            "-n",
            f"{args.name}@%h",
            "--without-mingle",
            "--without-gossip",
            "-l",
            settings.log_level,
        ]
    )


def cmd_beat(args: argparse.Namespace) -> int:
    from editq.logs import configure
    from editq.settings import get_settings
    from editq.worker.app import app

    settings = get_settings()
    configure(settings)
    app.start(["--quiet", "beat", "-s", args.schedule, "-l", settings.log_level])


def cmd_flower(args: argparse.Namespace) -> int:
    from editq.ops.flower import run

    return run(args.port, args.address)


def cmd_run(args: argparse.Namespace) -> int:
    from editq.ops.launcher import run

    return run()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="editq", description="Asynchronous, cost-aware image edits.")
    sub = top.add_subparsers(dest="command", required=True)
    _add_client_commands(sub)
    _add_tenants_command(sub)
    _add_keys_command(sub)
    _add_provider_command(sub)
    _add_sim_command(sub)
    _add_service_commands(sub)
    return top


def _add_client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", help="API base URL (EDITQ_API_URL)")
    p.add_argument("--key", help="API key (EDITQ_API_KEY)")


def _add_client_commands(sub: Subcommands) -> None:
    """`submit`, `status` and `usage`: the commands that call the API over HTTP."""
    _add_submit_command(sub)
    p = sub.add_parser("status", help="show a job")
    p.add_argument("id")
    _add_client_args(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("usage", help="spend, reservations and budgets")
    p.add_argument("--from", dest="from_")
    p.add_argument("--to")
    p.add_argument("--group-by", choices=["day", "model"])
    _add_client_args(p)
    p.set_defaults(func=cmd_usage)


def _add_submit_command(sub: Subcommands) -> None:
    p = sub.add_parser("submit", help="submit images (files, or a folder as a batch)")
    p.add_argument("images", nargs="+")
    p.add_argument("--prompt", required=True)
    p.add_argument("--mask")
    p.add_argument("--model")
    p.add_argument("--n", type=int)
    p.add_argument("--size")
    p.add_argument("--aspect-ratio")
    p.add_argument("--strength", choices=["low", "medium", "high"])
    p.add_argument("--quality")
    p.add_argument("--output-format")
    p.add_argument("--priority", choices=["interactive", "batch"])
    p.add_argument("--webhook-url")
    p.add_argument("--wait", action="store_true", help="wait for the results")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--out", help="folder to save outputs into (with --wait)")
    _add_client_args(p)
    p.set_defaults(func=cmd_submit)


def _add_tenants_command(sub: Subcommands) -> None:
    tenants = sub.add_parser("tenants", help="manage tenants").add_subparsers(dest="action", required=True)
    for action in ("create", "update"):
        p = tenants.add_parser(action)
        p.add_argument("name")
        p.add_argument("--budget-usd-day")
        p.add_argument("--budget-usd-month")
        p.add_argument("--budget-usd-total")
        p.add_argument("--weight", type=int, default=1 if action == "create" else None)
        p.add_argument("--max-running", type=int, default=0 if action == "create" else None)
        if action == "update":
            p.add_argument("--clear-budget", action="append", choices=["day", "month", "total"])
        p.set_defaults(func=cmd_tenants)
    for action in ("show", "rotate-secret"):
        p = tenants.add_parser(action)
        p.add_argument("name")
        p.set_defaults(func=cmd_tenants)
    tenants.add_parser("list").set_defaults(func=cmd_tenants)


def _add_keys_command(sub: Subcommands) -> None:
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    p = keys.add_parser("create")
    p.add_argument("tenant")
    p.set_defaults(func=cmd_keys)
    p = keys.add_parser("list")
    p.add_argument("tenant")
    p.set_defaults(func=cmd_keys)
    p = keys.add_parser("revoke")
    p.add_argument("key", help="the key, or its id")
    p.set_defaults(func=cmd_keys)


def _add_provider_command(sub: Subcommands) -> None:
    p = sub.add_parser("provider", help="the shared provider limiter")
    p.add_argument("action", choices=["status", "resume"])
    p.set_defaults(func=cmd_provider)


def _add_sim_command(sub: Subcommands) -> None:
    p = sub.add_parser("sim", help="run the simulator (OpenAI-compatible, not a generative model)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--rpm", type=float)
    p.add_argument("--ipm", type=float)
    p.add_argument("--latency", help="seconds, or a range like 1-3")
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--hang-rate", type=float, default=0.0)
    p.add_argument("--api-key")
    p.add_argument("--rate-headers", choices=["all", "requests", "none"], default="all")
    p.add_argument("--start-empty", action="store_true", help="rate buckets start empty")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--models", help="comma-separated models it serves (default: every catalogued model not retired)"
    )
    p.add_argument("--clock-offset", type=float, default=0.0, help="seconds added to its clock (retirements)")
    p.set_defaults(func=cmd_sim)


def _add_service_commands(sub: Subcommands) -> None:
    """`api`, `worker`, `beat` and `run`: the processes of the service."""
    p = sub.add_parser("api", help="run the API")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_api)

    p = sub.add_parser("worker", help="run a worker (threads pool)")
    p.add_argument("--concurrency", type=int)
    p.add_argument("--name", default="editq")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("flower", help="run Flower (basic auth from FLOWER_BASIC_AUTH)")
    p.add_argument("--port", type=int)
    p.add_argument("--address", default="127.0.0.1")
    p.set_defaults(func=cmd_flower)

    p = sub.add_parser("beat", help="run beat (housekeeping)")
    p.add_argument("--schedule", default=".editq/celerybeat-schedule")
    p.set_defaults(func=cmd_beat)

    sub.add_parser("run", help="run the whole stack locally (make run)").set_defaults(func=cmd_run)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
