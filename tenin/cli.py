"""The `tenin` command: the operator interface (docs/interfaces.md § Operator interface)."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports its commands lazily, so `tenin --help` stays fast
    from shared.config import Settings

SERVICES = ("campaign_engine", "chat_agent", "redemption_tracker")
# The marketer console is HTTP only: no worker (docs/interfaces.md § Marketer console).
HTTP_SERVICES = (*SERVICES, "console")
DEFAULT_PORTS = {
    "campaign_engine": 8001,
    "chat_agent": 8002,
    "redemption_tracker": 8003,
    "console": 8004,
}
REPO_ROOT = Path(__file__).resolve().parent.parent


def _settings(service: str = "tenin", secrets: Iterable[str] = ()) -> Settings:
    """Settings from the environment; refuses (ConfigError) when a secret in `secrets` is unfit."""
    from shared.config import Settings, require_secrets
    from shared.logging import configure_logging

    settings = Settings.from_env(service=service)
    if secrets:
        require_secrets(settings, secrets)
    configure_logging(service, settings.log_level, settings.log_json)
    return settings


def cmd_migrate(args: argparse.Namespace) -> int:
    """Alembic upgrade to head (or --revision) on DATABASE_URL."""
    from alembic import command
    from alembic.config import Config

    settings = _settings()
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.attributes["url"] = settings.effective_database_url
    cfg.attributes["configure_logger"] = False
    if args.down:
        command.downgrade(cfg, args.revision or "base")
    else:
        command.upgrade(cfg, args.revision or "head")
    print(f"migrated {settings.effective_database_url.split('@')[-1]} to {args.revision or 'head'}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """Create, list or revoke API keys."""
    from shared.auth import create_key, list_keys, revoke_key
    from shared.db import make_engine, make_session_factory, unit_of_work

    # API keys are hashed under TENIN_SECRET_KEY: one made under a public or unset key is useless.
    settings = _settings(secrets=["TENIN_SECRET_KEY"] if args.keys_command == "create" else ())
    sessions = make_session_factory(make_engine(settings.effective_database_url, pool_size=1))
    with unit_of_work(sessions) as session:
        if args.keys_command == "create":
            try:
                key = create_key(session, settings.secret_key, args.role, args.store, args.label)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(f"created a {args.role} key" + (f" for store {args.store}" if args.store else ""))
            print("store it now: it is shown only once")
            print(key)
        elif args.keys_command == "list":
            for row in list_keys(session):
                state = "revoked" if row.revoked_at else "active"
                print(
                    f"{row.key_id}\t{row.role}\t{row.store_id or '-'}\t{state}\t{row.created_at:%Y-%m-%d}"
                )
        else:
            if not revoke_key(session, args.key_id):
                print(f"no active key {args.key_id}", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}")
    return 0


def _share_metrics_dir(service: str) -> None:
    """One prometheus multiprocess folder per service, shared by its gunicorn workers and its
    worker process, so the app's /metrics also shows the worker's counters (CPS, decisions…)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from shared.config import Settings

    folder = Settings.from_env().data_dir / "metrics" / service
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run a service's HTTP app under gunicorn."""
    from shared.secret_keys import REQUIRED, SECRET_KEY

    # Refuse here, before gunicorn starts workers. The console signs only its CSRF tokens.
    _settings(args.service, secrets=[SECRET_KEY] if args.service == "console" else REQUIRED)
    if args.service == "console":
        from services.console.config import ConsoleConfig

        ConsoleConfig.from_env()  # ConfigError naming a missing API URL, before exec
    port = args.port or DEFAULT_PORTS[args.service]
    _share_metrics_dir(args.service)
    if args.metrics_port:  # served by the gunicorn master (shared/http/metrics_port.py)
        os.environ["TENIN_METRICS_PORT"] = str(args.metrics_port)
    argv = [
        "gunicorn",
        "--config",
        "python:shared.http.metrics_port",
        "--bind",
        f"{args.host}:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(args.threads),
        "--timeout",
        "30",
        "--graceful-timeout",
        "20",
        "--access-logfile",
        "-",
        "--access-logformat",
        '{"event":"http_request","method":"%(m)s","path":"%(U)s","status":%(s)s,"ms":%(M)s}',
        f"services.{args.service}.app:create_app()",
    ]
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 0  # pragma: no cover - exec does not return


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a service's consumers and outbox relay (`tenin worker`), or its relay alone
    (`tenin relay`, with TENIN_OUTBOX_RELAY=process), until SIGTERM."""
    import importlib

    from shared.runtime import install_stop_signals
    from shared.secret_keys import REQUIRED

    settings = _settings(args.service, secrets=REQUIRED)
    _share_metrics_dir(args.service)
    module = importlib.import_module(f"services.{args.service}.worker")
    stop = threading.Event()
    install_stop_signals(stop)
    run = module.run if args.command == "worker" else module.run_relay
    return int(run(settings, stop))


def cmd_model(args: argparse.Namespace, rest: list[str]) -> int:
    """Train, evaluate, list, promote, roll back or retrain models (docs/learning.md)."""
    _settings("model")
    from services.campaign_engine.modeling import cli as modeling_cli
    from services.campaign_engine.modeling import lifecycle_cli, retention, retrain

    commands = {
        "train": modeling_cli.train_main,
        "evaluate": modeling_cli.evaluate_main,
        "list": lifecycle_cli.list_main,
        "promote": lifecycle_cli.promote_main,
        "rollback": lifecycle_cli.rollback_main,
        "retrain": retrain.retrain_main,
        "prune-logs": retention.prune_logs_main,
    }
    return int(commands[args.model_command](rest))


def cmd_demo(args: argparse.Namespace, rest: list[str]) -> int:
    """Run the simulated week end to end (the main job)."""
    from tenin.demo import main as demo_main

    return int(demo_main(rest))


def cmd_embedded(args: argparse.Namespace) -> int:
    """Start the embedded Redis and Tansu broker in the foreground and print exports
    (with the data directory's own secrets, for those the shell does not set)."""
    from shared.embedded import EmbeddedStack
    from shared.secret_keys import embedded_secrets

    settings = _settings()
    stop = threading.Event()
    from shared.runtime import install_stop_signals

    install_stop_signals(stop)
    own = {k: v for k, v in embedded_secrets(settings.data_dir).items() if not os.environ.get(k)}
    with EmbeddedStack(settings.data_dir / "embedded") as env:
        for name, value in {**env, **own}.items():
            print(f"export {name}={value}", flush=True)
        stop.wait()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tenin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    migrate = sub.add_parser("migrate", help="alembic upgrade head on DATABASE_URL")
    migrate.add_argument("--revision", default=None)
    migrate.add_argument("--down", action="store_true", help="downgrade (to base by default)")

    keys = sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create")
    create.add_argument("--role", required=True, choices=["marketer", "pos", "members", "admin"])
    create.add_argument("--store", default=None)
    create.add_argument("--label", default=None)
    keys_sub.add_parser("list")
    revoke = keys_sub.add_parser("revoke")
    revoke.add_argument("key_id")

    serve = sub.add_parser("serve", help="run a service's HTTP app under gunicorn")
    serve.add_argument("service", choices=HTTP_SERVICES)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--threads", type=int, default=8)
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve /metrics on this internal port (default: $TENIN_METRICS_PORT; none)",
    )

    worker = sub.add_parser("worker", help="run a service's consumers and outbox relay")
    worker.add_argument("service", choices=SERVICES)
    relay = sub.add_parser(
        "relay", help="run a service's outbox relay alone (with TENIN_OUTBOX_RELAY=process)"
    )
    relay.add_argument("service", choices=SERVICES)

    model = sub.add_parser(
        "model", help="train, evaluate, list, promote, rollback, retrain, prune-logs"
    )
    model.add_argument(
        "model_command",
        choices=["train", "evaluate", "list", "promote", "rollback", "retrain", "prune-logs"],
    )

    sub.add_parser("demo", help="the simulated week, end to end, on the embedded default")
    sub.add_parser("embedded", help="start the embedded Redis + Tansu broker").add_argument(
        "action", choices=["up"]
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tenin` console script."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "model":
        return cmd_model(args, rest)
    if args.command == "demo":
        return cmd_demo(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    handlers = {
        "migrate": cmd_migrate,
        "keys": cmd_keys,
        "serve": cmd_serve,
        "worker": cmd_worker,
        "relay": cmd_worker,
        "embedded": cmd_embedded,
    }
    from shared.config import ConfigError

    try:
        return handlers[args.command](args)
    except ConfigError as exc:  # a bad environment: say which variable, no traceback
        print(f"tenin {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
