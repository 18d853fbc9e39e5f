"""The `editq` command: client of the API, admin of tenants and keys, and the service launcher."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from editq.tools.commands import add_client_commands

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

#: Packages of the server's install (`pip install 'editq[server]'`), imported by the commands that
#: run the service or talk to Redis directly; the client commands need none of them.
SERVER_PACKAGES = frozenset(
    {
        "boto3",
        "botocore",
        "celery",
        "cryptography",
        "fastapi",
        "flower",
        "kombu",
        "multipart",
        "PIL",
        "prometheus_client",
        "pydantic_settings",
        "python_multipart",
        "redis",
        "starlette",
        "uvicorn",
    }
)


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _fail(text: str, code: int = 1) -> int:
    sys.stderr.write(f"editq: {text}\n")
    return code


def _usd(value: str | None) -> int | None:
    from editq.options import usd_to_micros

    return None if value is None else usd_to_micros(value, "budget")


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
    add_client_commands(sub)
    _add_tenants_command(sub)
    _add_keys_command(sub)
    _add_provider_command(sub)
    _add_sim_command(sub)
    _add_service_commands(sub)
    return top


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
    try:
        result: int = args.func(args)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in SERVER_PACKAGES:
            raise
        return _fail(
            f"`editq {args.command}` needs the server's packages ({missing} is not installed): "
            "pip install 'editq[server]'"
        )
    return result


if __name__ == "__main__":
    raise SystemExit(main())
