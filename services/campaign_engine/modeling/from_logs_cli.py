"""`tenin model train --from-logs [--uplift]`: the train sub-command's logged-data branch.

Arguments and entry point for modeling/from_logs.py (docs/interfaces.md § Operator
interface); modeling/cli.py adds the arguments and hands over when `--from-logs` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.campaign_engine.modeling.artifacts import ParityError
from services.campaign_engine.modeling.from_logs import Kind, train_from_logs
from services.campaign_engine.modeling.registry import RegistryError
from shared.config import DEFAULT_MODEL_DIR, DEFAULT_UPLIFT_DIR, Settings
from shared.db import make_engine

log = logging.getLogger(__name__)
DEFAULT_DAYS = 28


def aware_datetime(raw: str) -> datetime:
    """An ISO 8601 time with its UTC offset (argparse type: a bad one names the option)."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {raw!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{raw!r} has no UTC offset (e.g. +09:00 or Z)")
    return value.astimezone(UTC)


def from_logs_arguments(ap: argparse.ArgumentParser) -> None:
    """The --from-logs options of `tenin model train`."""
    group = ap.add_argument_group("training from the decision log")
    group.add_argument(
        "--from-logs",
        action="store_true",
        help="train on logged decisions and their outcomes; register a candidate",
    )
    group.add_argument(
        "--uplift", action="store_true", help="with --from-logs: the uplift pair (T-learner)"
    )
    group.add_argument(
        "--since",
        type=aware_datetime,
        default=None,
        help=f"decisions from this time (default: {DEFAULT_DAYS} days before --until)",
    )
    group.add_argument(
        "--until", type=aware_datetime, default=None, help="decisions before this time (now)"
    )
    group.add_argument(
        "--spend-window-days", type=float, default=7.0, help="spend counted after a decision"
    )


def from_logs_main(args: argparse.Namespace) -> int:
    """Train one version from the log and register it as a candidate; print its summary."""
    if args.spend_window_days <= 0:
        log.error("--spend-window-days must be positive")
        return 2
    kind: Kind = "uplift" if args.uplift else "propensity"
    until = args.until or datetime.now(UTC)
    since = args.since or until - timedelta(days=DEFAULT_DAYS)
    if since >= until:
        log.error("--since must be before --until")
        return 2
    url = args.database_url or os.environ.get("DATABASE_URL") or Settings().effective_database_url
    db = make_engine(url)
    schema = args.schema or ("campaign_engine" if db.dialect.name == "postgresql" else None)
    model_dir = Path(args.model_dir or (DEFAULT_UPLIFT_DIR if args.uplift else DEFAULT_MODEL_DIR))
    try:
        with db.begin() as conn:
            trained = train_from_logs(
                conn,
                kind=kind,
                since=since,
                until=until,
                model_dir=model_dir,
                seed=args.seed,
                schema=schema,
                progress=lambda msg: log.info("%s", msg),
                spend_window=timedelta(days=args.spend_window_days),
            )
    except (ValueError, ParityError, RegistryError) as exc:
        log.error("training from logs failed: %s", exc)
        return 1
    finally:
        db.dispose()
    card = trained.card
    print(
        json.dumps(
            {
                "version": trained.version,
                "kind": kind,
                "status": "candidate",
                "path": str(trained.path),
                "rows": card["rows"],
                "metrics": card["metrics"],
            }
        )
    )
    if args.out:
        args.out.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return 0
