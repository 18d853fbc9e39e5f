"""The `editq` command: client of the API, admin of tenants and keys, and the service launcher."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
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


def _admin_api(args: argparse.Namespace) -> Any:
    """The admin API client when pointed at an API (`--api` or EDITQ_API_URL) with
    EDITQ_ADMIN_API_KEY set; None to work on Redis directly."""
    from editq.settings import get_settings
    from editq.tools.admin import AdminClient

    settings = get_settings()
    url = args.api or os.environ.get("EDITQ_API_URL")
    if args.api and settings.admin_api_key is None:
        raise SystemExit("editq: --api needs EDITQ_ADMIN_API_KEY (the admin API's key)")
    if not url or settings.admin_api_key is None:
        return None
    return AdminClient(url, settings.admin_api_key.get_secret_value())


def _budget_args(args: argparse.Namespace) -> dict[str, str | None]:
    """The budgets given on the command line, as typed; `--clear-budget` ones as None."""
    given = {p: getattr(args, f"budget_usd_{p}", None) for p in ("day", "month", "total")}
    changes: dict[str, str | None] = {p: v for p, v in given.items() if v is not None}
    for period in getattr(args, "clear_budget", None) or []:
        changes[period] = None
    return changes


def _through_api(api: Any, step: Any, args: argparse.Namespace) -> int:
    """Run `step(api, args)`, a refusal or an unreachable API reported as an error."""
    import httpx

    from editq.client import EditqError

    with api:
        try:
            result: int = step(api, args)
        except EditqError as exc:
            return _fail(str(exc))
        except httpx.TransportError as exc:
            return _fail(f"cannot reach the admin API at {api.http.base_url}: {exc}")
    return result


def _on_redis(step: Any, args: argparse.Namespace) -> int:
    """Run `step(db, args)` on Redis directly, a refusal reported as an error."""
    from editq.errors import EditqError
    from editq.storage.tenants import TenantError

    db = _db()
    try:
        result: int = step(db, args)
    except TenantError as exc:
        return _fail(str(exc))
    except EditqError as exc:
        return _fail(f"{exc.code}: {exc.message}")
    finally:
        db.close()
    return result


def _plan_arg(args: argparse.Namespace) -> dict[str, str | None]:
    """`{"plan": name}` for `--plan`, `{"plan": None}` for `--clear-plan`, else nothing."""
    if getattr(args, "clear_plan", False):
        return {"plan": None}
    return {"plan": args.plan} if getattr(args, "plan", None) else {}


def cmd_tenants(args: argparse.Namespace) -> int:
    api = _admin_api(args)
    return _on_redis(_tenants_on_redis, args) if api is None else _through_api(api, _tenants_on_api, args)


def _tenants_on_api(api: Any, args: argparse.Namespace) -> int:
    from editq.tools.client import dumps

    fields: dict[str, Any] = {f"budget_usd_{p}": v for p, v in _budget_args(args).items()}
    fields.update(_plan_arg(args))
    if getattr(args, "weight", None) is not None:
        fields["weight"] = args.weight
    if getattr(args, "max_running", None) is not None:
        fields["max_running"] = args.max_running
    if getattr(args, "default_priority", None) is not None:
        fields["default_priority"] = args.default_priority
    if args.action == "create":
        _print(dumps(api.create_tenant(args.name, **fields)))
    elif args.action == "update":
        _print(dumps(api.update_tenant(args.name, **fields)))
    elif args.action == "show":
        found = api.tenant(args.name)
        _print(dumps({**found, "keys": [k["id"] for k in api.keys(args.name)]}))
    elif args.action == "list":
        for tenant in api.tenants():
            _print(tenant["name"])
    elif args.action == "top-up":
        _print(dumps(api.top_up(args.name, args.credits, args.note, idempotency_key=args.idempotency_key)))
    else:
        return _fail(
            f"tenants {args.action} is not part of the admin API: run it without --api (on Redis), "
            "or with the tenant's key (POST /v1/webhooks/secret/rotate)"
        )
    return 0


def _tenants_on_redis(db: Any, args: argparse.Namespace) -> int:
    from editq.storage import credits, tenants
    from editq.tools.client import dumps

    budgets = {p: _usd(v) for p, v in _budget_args(args).items()}
    plan = _plan_arg(args)
    if plan.get("plan") and credits.get_plan(db, str(plan["plan"])) is None:
        return _fail(f"no plan {plan['plan']!r}")
    if args.action in ("create", "update"):
        limits = {"weight": args.weight, "max_running": args.max_running, "budgets": budgets}
        if args.action == "create":
            tenant = tenants.create(db, args.name, **limits, default_priority=args.default_priority or "")
        else:
            tenant = tenants.update(db, args.name, **limits, default_priority=args.default_priority)
        if plan:
            credits.assign(db, args.name, plan["plan"])
        shown = {**tenant.public(), **plan}
        if args.action == "create":
            shown["webhook_secret"] = tenants.secrets_of(db, args.name)[0]["secret"]
        _print(dumps(shown))
    elif args.action == "show":
        return _show_tenant(db, args.name)
    elif args.action == "list":
        for name in tenants.names(db):
            _print(name)
    elif args.action == "rotate-secret":
        _print(dumps(tenants.rotate_secret(db, args.name, db.settings.secret_overlap_seconds)))
    elif args.action == "top-up":
        done = credits.top_up(db, args.name, args.credits, args.note, idempotency_key=args.idempotency_key)
        _print(dumps({"tenant": args.name, **done.balance.public()}))
    return 0


def _show_tenant(db: Any, name: str) -> int:
    from editq.storage import credits, money, tenants
    from editq.tools.client import dumps

    found = tenants.get(db, name)
    if found is None:
        return _fail(f"no tenant {name!r}")
    _print(
        dumps(
            {
                **found.public(),
                "keys": tenants.list_keys(db, name),
                "webhook_secrets": tenants.secrets_of(db, name),
                "budgets_now": money.budgets(db, name, found.budgets),
                "credits": credits.balance(db, name).public(),
                "disabled_webhook_urls": sorted(tenants.disabled_urls(db, name)),
            }
        )
    )
    return 0


def _plan_fields(args: argparse.Namespace) -> dict[str, Any]:
    """A plan body from `plans create`: `--per-image` is JSON, or @FILE holding it."""
    import json

    fields: dict[str, Any] = {"credit_usd": args.credit_usd}
    if args.markup is not None:
        fields["markup"] = args.markup
    if args.per_image is not None:
        text = Path(args.per_image[1:]).read_text() if args.per_image.startswith("@") else args.per_image
        try:
            fields["per_image"] = json.loads(text)
        except ValueError:
            raise SystemExit("editq: --per-image is JSON, or @FILE holding JSON") from None
    return fields


def cmd_plans(args: argparse.Namespace) -> int:
    api = _admin_api(args)
    return _on_redis(_plans_on_redis, args) if api is None else _through_api(api, _plans_on_api, args)


def _plans_on_api(api: Any, args: argparse.Namespace) -> int:
    from editq.tools.client import dumps

    if args.action == "create":
        _print(dumps(api.create_plan(args.name, **_plan_fields(args))))
    elif args.action == "show":
        _print(dumps(api.plan(args.name)))
    else:
        for plan in api.plans():
            _print(plan["name"])
    return 0


def _plans_on_redis(db: Any, args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from editq import catalogue
    from editq.api.admin import refusal
    from editq.api.admin_schemas import PlanCreate
    from editq.storage import credits
    from editq.tools.client import dumps

    if args.action == "create":
        try:
            body = PlanCreate.model_validate({"name": args.name, **_plan_fields(args)})
        except ValidationError as exc:
            raise refusal(exc, PlanCreate.codes) from None
        plan = body.to_plan(catalogue.load(db.settings.catalogue_path), int(db.clock.time()))
        _print(dumps(credits.create_plan(db, plan).public()))
    elif args.action == "show":
        found = credits.get_plan(db, args.name)
        if found is None:
            return _fail(f"no plan {args.name!r}")
        _print(dumps(found.public()))
    else:
        for plan in credits.plans(db):
            _print(plan.name)
    return 0


def _key_id(key_or_id: str) -> str:
    """The id of a key (`eq_<id>_<secret>`), or the id itself."""
    return key_or_id.split("_")[1] if key_or_id.startswith("eq_") and key_or_id.count("_") >= 2 else key_or_id


def cmd_keys(args: argparse.Namespace) -> int:
    api = _admin_api(args)
    return _on_redis(_keys_on_redis, args) if api is None else _through_api(api, _keys_on_api, args)


def _keys_on_api(api: Any, args: argparse.Namespace) -> int:
    if args.action == "create":
        _print(api.create_key(args.tenant)["key"])
        sys.stderr.write("editq: this key is shown once; store it now\n")
    elif args.action == "revoke":
        key_id = _key_id(args.key)
        tenant = args.tenant or api.find_key(key_id)
        api.revoke_key(tenant, key_id)
        _print(f"revoked a key of {tenant}")
    elif args.action == "list":
        for key in api.keys(args.tenant):
            _print(f"eq_{key['id']}_…")
    return 0


def _keys_on_redis(db: Any, args: argparse.Namespace) -> int:
    from editq.storage import tenants

    if args.action == "create":
        _print(tenants.create_key(db, args.tenant))
        sys.stderr.write("editq: this key is shown once; store it now\n")
    elif args.action == "revoke":
        if args.tenant:
            tenants.revoke(db, args.tenant, _key_id(args.key))
            tenant = args.tenant
        else:
            tenant = tenants.revoke_key(db, args.key)
        _print(f"revoked a key of {tenant}")
    elif args.action == "list":
        for key_id in tenants.list_keys(db, args.tenant):
            _print(f"eq_{key_id}_…")
    return 0


def cmd_provider(args: argparse.Namespace) -> int:
    from editq.storage import limiter
    from editq.tools.client import dumps

    db = _db()
    try:
        if args.account and db.settings.account(args.account) is None:
            known = ", ".join(a.name for a in db.settings.accounts)
            sys.stderr.write(f"editq: no provider account {args.account!r} (configured: {known})\n")
            return 2
        if args.action == "resume":
            limiter.resume(db, args.account)
        state = limiter.state(db)
    finally:
        db.close()
    if args.json:
        _print(dumps(state))
        return 0
    _print(f"{'account':<16} {'kind':<7} {'ipm':>7} {'effective':>9} {'rpm':>7} {'inflight':>9}  state")
    for a in state["accounts"]:
        status = a["state"] + (f" ({a['pause_reason']})" if a["pause_reason"] else "")
        _print(
            f"{a['name']:<16} {a['kind']:<7} {a['ipm_configured']:>7} {a['ipm_effective']:>9g} "
            f"{a['rpm_configured']:>7} {a['inflight']:>4}/{a['max_inflight']:<4}  {status}"
        )
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
        batch_delay=args.batch_delay,
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
    from editq.worker.app import EDIT_SLOTS, EDITS, OPS, WEBHOOKS, app, edit_slots

    settings = get_settings()
    configure(settings)
    concurrency = args.concurrency or settings.worker_concurrency
    # Edits run on threads of editq's own (worker/runner.py); Celery's pool gets the rest.
    slots = edit_slots(concurrency)
    app.conf[EDIT_SLOTS] = slots
    app.worker_main(
        [
            "--quiet",  # no banner on stdout: every line the worker writes is a log record
            "worker",
            "-P",
            "threads",
            "-c",
            str(max(1, concurrency - slots)),
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


def cmd_probe(args: argparse.Namespace) -> int:
    """Exit 0 if the process is ready (live, with `--live`), 1 if not: for container probes."""
    from editq import probe
    from editq.settings import get_settings

    settings = get_settings()
    if args.role in ("api", "flower"):
        port = args.port or (settings.api_port if args.role == "api" else settings.flower_port)
        route = {"api": "/healthz" if args.live else "/readyz", "flower": "/healthcheck"}[args.role]
        healthy, reason = _http_probe(f"http://127.0.0.1:{port}{route}", args.timeout)
    else:
        verdict = probe.check(
            probe.path(settings.probe_dir, args.role, args.name),
            ready=not args.live,
            max_age=args.max_age or probe.LIVE_SECONDS,
            ready_age=probe.ready_seconds(settings, args.role),
        )
        healthy, reason = verdict.healthy, verdict.reason
    _print(f"{'ok' if healthy else 'unhealthy'}: {args.role}: {reason}")
    return 0 if healthy else 1


def _http_probe(url: str, timeout: float) -> tuple[bool, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - a loopback URL built here
            return True, f"{url} answered {answer.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url} answered {exc.code}: {exc.read(300).decode('utf-8', 'replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {exc}"


def cmd_run(args: argparse.Namespace) -> int:
    from editq.ops.launcher import run

    return run()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="editq", description="Asynchronous, cost-aware image edits.")
    sub = top.add_subparsers(dest="command", required=True)
    add_client_commands(sub)
    _add_tenants_command(sub)
    _add_keys_command(sub)
    _add_plans_command(sub)
    _add_provider_command(sub)
    _add_sim_command(sub)
    _add_service_commands(sub)
    return top


def _add_admin_api_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--api",
        help="go through this API's admin API (EDITQ_API_URL), with EDITQ_ADMIN_API_KEY; "
        "without either, work on Redis directly",
    )


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
        p.add_argument("--plan", help="credit plan for the jobs submitted from now on")
        p.add_argument(
            "--default-priority",
            choices=["interactive", "batch", "economy"],
            help="priority of jobs that name none (economy: the provider's Batch API, half price)",
        )
        if action == "update":
            p.add_argument("--clear-budget", action="append", choices=["day", "month", "total"])
            p.add_argument("--clear-plan", action="store_true", help="take the tenant off its plan")
        _add_admin_api_arg(p)
        p.set_defaults(func=cmd_tenants)
    for action in ("show", "rotate-secret"):
        p = tenants.add_parser(action)
        p.add_argument("name")
        _add_admin_api_arg(p)
        p.set_defaults(func=cmd_tenants)
    p = tenants.add_parser("list")
    _add_admin_api_arg(p)
    p.set_defaults(func=cmd_tenants)
    p = tenants.add_parser("top-up", help="add credits to the tenant's balance")
    p.add_argument("name")
    p.add_argument("credits", type=int)
    p.add_argument("--note", default="", help="recorded in the ledger (an invoice number, say)")
    p.add_argument(
        "--idempotency-key",
        default=None,
        help="run it again with the same key and nothing more is added (an invoice number, say)",
    )
    _add_admin_api_arg(p)
    p.set_defaults(func=cmd_tenants)


def _add_plans_command(sub: Subcommands) -> None:
    plans = sub.add_parser("plans", help="credit plans").add_subparsers(dest="action", required=True)
    p = plans.add_parser("create", help="a new plan (plans never change)")
    p.add_argument("name")
    p.add_argument("--credit-usd", required=True, help="what one credit is worth, in USD")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--markup", help="on the provider's cost: 0.25 charges cost x 1.25")
    how.add_argument(
        "--per-image", help='price list as JSON ({"model": {"size": {"quality": credits}}}) or @FILE'
    )
    _add_admin_api_arg(p)
    p.set_defaults(func=cmd_plans)
    p = plans.add_parser("show")
    p.add_argument("name")
    _add_admin_api_arg(p)
    p.set_defaults(func=cmd_plans)
    p = plans.add_parser("list")
    _add_admin_api_arg(p)
    p.set_defaults(func=cmd_plans)


def _add_keys_command(sub: Subcommands) -> None:
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    for action in ("create", "list"):
        p = keys.add_parser(action)
        p.add_argument("tenant")
        _add_admin_api_arg(p)
        p.set_defaults(func=cmd_keys)
    p = keys.add_parser("revoke")
    p.add_argument("key", help="the key, or its id")
    p.add_argument("--tenant", help="the tenant holding it (else every tenant is searched)")
    _add_admin_api_arg(p)
    p.set_defaults(func=cmd_keys)


def _add_provider_command(sub: Subcommands) -> None:
    p = sub.add_parser("provider", help="the provider accounts: limits, rates, in flight, pauses")
    p.add_argument("action", nargs="?", choices=["status", "resume"], default="status")
    p.add_argument("--account", help="resume only this account (default: every account)")
    p.add_argument("--json", action="store_true", help="the whole state as JSON")
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
    p.add_argument(
        "--batch-delay", type=float, default=0.5, help="seconds a Batch API batch runs before its results"
    )
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
    _add_probe_command(sub)


def _add_probe_command(sub: Subcommands) -> None:
    p = sub.add_parser(
        "probe",
        help="health of a local process, for container probes (exit 0: healthy)",
        description="worker and beat: the state file the process keeps (no Redis round trip); "
        "api: GET /readyz (/healthz with --live); flower: GET /healthcheck.",
    )
    p.add_argument("role", choices=["api", "worker", "beat", "flower"])
    p.add_argument("--live", action="store_true", help="liveness only (default: readiness)")
    p.add_argument("--name", default="editq", help="the worker's --name")
    p.add_argument("--max-age", type=_seconds, help="seconds a main loop may stand still (default 60)")
    p.add_argument("--port", type=int, help="api or flower port (default: EDITQ_API_PORT, EDITQ_FLOWER_PORT)")
    p.add_argument("--timeout", type=_seconds, default=5.0, help="HTTP timeout (api, flower)")
    p.set_defaults(func=cmd_probe)


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse says what is wrong otherwise)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"seconds must be above 0 and below a day: {text!r}")
    return value


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
