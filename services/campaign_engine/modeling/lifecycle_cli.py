"""`tenin model list|promote|rollback` and `evaluate --candidate|--logs` (docs/learning.md).

Exit codes: 0 done, 1 failed, 2 bad usage or unknown version, 3 refused by the gate.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.modeling import bandit_files, candidate, promotion, registry
from services.campaign_engine.modeling.evaluate import format_report
from services.campaign_engine.modeling.from_logs_cli import DEFAULT_DAYS, aware_datetime
from services.campaign_engine.modeling.gate import promotion_margin
from services.campaign_engine.modeling.lifecycle import (
    Place,
    evaluate_candidate,
    judge_and_promote,
    kind_of,
)
from shared.config import DEFAULT_UPLIFT_DIR, Settings
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.model.scoring import ModelLoadError

log = logging.getLogger(__name__)
REFUSED = 3


def common_arguments(ap: argparse.ArgumentParser, *, window: bool = True) -> None:
    """Where the registry, the log and the models are; who acts and why."""
    ap.add_argument(
        "--kind", choices=registry.KINDS, default=None, help="default: from the registry"
    )
    ap.add_argument("--database-url", default=None, help="default: DATABASE_URL")
    ap.add_argument("--schema", default=None, help="default: campaign_engine on Postgres")
    ap.add_argument(
        "--model-dir", type=Path, default=None, help="propensity models (TENIN_MODEL_DIR)"
    )
    ap.add_argument("--uplift-dir", type=Path, default=DEFAULT_UPLIFT_DIR, help="uplift models")
    ap.add_argument("--actor", default=None, help="who does this (default: the OS user)")
    ap.add_argument("--reason", default="", help="why (kept in the promotion history)")
    if window:
        ap.add_argument("--since", type=aware_datetime, default=None, help="logged decisions from")
        ap.add_argument("--until", type=aware_datetime, default=None, help="... until (now)")
        ap.add_argument("--spend-window-days", type=float, default=7.0)


def place_from(args: argparse.Namespace, settings: Settings, dialect: str) -> Place:
    """The Place the commands act on: arguments first, then the environment's settings."""
    margin_rate = PolicyConfig().margin_rate
    return Place(
        model_dirs={
            "propensity": Path(args.model_dir or settings.model_dir),
            "uplift": Path(args.uplift_dir),
        },
        policy=PolicyConfig(
            mode="epsilon_greedy", epsilon=settings.policy_epsilon, margin_rate=margin_rate
        ),
        margins={k: promotion_margin(os.environ, k) for k in registry.KINDS},
        schema=args.schema or ("campaign_engine" if dialect == "postgresql" else None),
        spend_window=timedelta(days=getattr(args, "spend_window_days", 7.0)),
    )


def window(args: argparse.Namespace) -> tuple[datetime, datetime]:
    """[since, until) of the logged decisions to judge on (default: the last DEFAULT_DAYS days)."""
    until = args.until or datetime.now(UTC)
    return args.since or until - timedelta(days=DEFAULT_DAYS), until


def actor(args: argparse.Namespace) -> str:
    """--actor, else the OS user."""
    return str(args.actor or getpass.getuser())


@contextmanager
def opened(args: argparse.Namespace) -> Iterator[tuple[Session, Place]]:
    """One transaction on the registry's database, and the Place (committed when the block ends)."""
    settings = Settings.from_env()
    engine = make_engine(args.database_url or settings.effective_database_url, pool_size=1)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            yield session, place_from(args, settings, engine.dialect.name)
    finally:
        engine.dispose()


def list_main(argv: list[str]) -> int:
    """`tenin model list`: versions, their cards' headline figures, which serves, recent changes."""
    ap = argparse.ArgumentParser(prog="tenin model list", description=list_main.__doc__)
    common_arguments(ap, window=False)
    ap.add_argument("--history", type=int, default=5, help="recent promotions shown per kind")
    ap.add_argument("--json", action="store_true", help="versions and history as JSON")
    args = ap.parse_args(argv)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with opened(args) as (session, _place):
        for kind in [args.kind] if args.kind else registry.KINDS:
            rows = registry.versions(session, kind)
            history = registry.changes(session, kind)[: args.history]
            out[kind] = {
                "versions": [
                    {
                        "version": r.version,
                        "status": r.status,
                        "created_at": r.created_at.isoformat(),
                        "rows": r.card.get("rows"),
                        "metrics": r.metrics,
                        "data_window": r.card.get("data_window"),
                    }
                    for r in rows
                ],
                "history": [
                    {
                        "action": c.action,
                        "from": c.from_version,
                        "to": c.to_version,
                        "actor": c.actor,
                        "at": c.at.isoformat(),
                        "reason": c.reason,
                    }
                    for c in history
                ],
            }
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    for kind, body in out.items():
        print(f"{kind}:")
        for v in body["versions"] or [{"version": "(none registered)", "status": ""}]:
            mark = "*" if v["status"] == "serving" else " "
            print(
                f" {mark} {v['version']}  {v['status']}  {v.get('created_at', '')}"
                f"  rows={v.get('rows')}  metrics={json.dumps(v.get('metrics'), default=str)}"
            )
        for c in body["history"]:
            print(
                f"   {c['at']} {c['action']} {c['from']} -> {c['to']} by {c['actor']}: {c['reason']}"
            )
    return 0


def promote_main(argv: list[str]) -> int:
    """`tenin model promote VERSION`: through the gate unless --force; recorded either way."""
    ap = argparse.ArgumentParser(prog="tenin model promote", description=promote_main.__doc__)
    ap.add_argument("version")
    ap.add_argument("--force", action="store_true", help="promote even if the gate refuses")
    common_arguments(ap)
    args = ap.parse_args(argv)
    since, until = window(args)
    try:
        with opened(args) as (session, place):
            judged = judge_and_promote(
                session,
                place,
                args.version,
                since,
                until,
                actor=actor(args),
                reason=args.reason,
                force=args.force,
                kind=args.kind,
            )
    except (promotion.PromotionError, registry.RegistryError) as exc:
        log.error("promote: %s", exc)
        return 2
    print(candidate.format_comparison(judged.comparison))
    o = judged.outcome
    print(f"{o.action}: {o.kind} {o.from_version or '(none)'} -> {o.to_version}: {o.reason}")
    return 0 if o.action == "promote" else REFUSED


def rollback_main(argv: list[str]) -> int:
    """`tenin model rollback`: serve again the version that served before the current one."""
    ap = argparse.ArgumentParser(prog="tenin model rollback", description=rollback_main.__doc__)
    common_arguments(ap, window=False)
    args = ap.parse_args(argv)
    try:
        with opened(args) as (session, place):
            kind = args.kind or "propensity"  # documented default
            o = promotion.rollback(
                session, place.model_dirs[kind], kind, actor=actor(args), reason=args.reason
            )
    except (promotion.PromotionError, registry.RegistryError) as exc:
        log.error("rollback: %s", exc)
        return 2
    print(f"rollback: {o.kind} {o.from_version} -> {o.to_version}: {o.reason}")
    return 0


def evaluate_candidate_main(args: argparse.Namespace) -> int:
    """`tenin model evaluate --candidate VERSION`: candidate vs champion on the logged decisions."""
    since, until = window(args)
    try:
        with opened(args) as (session, place):
            kind = args.kind or kind_of(session, args.candidate)
            comparison = evaluate_candidate(session, place, kind, args.candidate, since, until)
    except (promotion.PromotionError, registry.RegistryError, ModelLoadError) as exc:
        log.error("evaluate: %s", exc)
        return 2
    print(candidate.format_comparison(comparison))
    if args.out:
        args.out.write_text(json.dumps(comparison.as_json(), indent=2) + "\n", encoding="utf-8")
    return 0


def evaluate_logs_main(args: argparse.Namespace) -> int:
    """`tenin model evaluate --logs FILE [--policy VERSION]`: estimates on an exported log."""
    config = PolicyConfig(
        mode=args.mode,
        epsilon=args.epsilon,
        temperature=args.temperature,
        margin_rate=args.margin_rate,
    )
    try:
        f = bandit_files.read(args.logs)
        p_hat = None
        if args.policy:
            if f.X is None:
                raise bandit_files.BanditFileError("--policy needs the feature columns in the file")
            p_hat = candidate.p_redeem(
                candidate.load(args.model_dir, "propensity", args.policy), f.X
            )
        results = bandit_files.estimate_file(f, p_hat, config)
    except (bandit_files.BanditFileError, ModelLoadError, OSError) as exc:
        log.error("evaluate --logs: %s", exc)
        return 2
    print(format_report(results, args.policy or "(the file's target_probability)", config))
    if args.out:
        body = {k: vars(v) for k, v in results.items()}
        args.out.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return 0
