"""`tenin model retrain`: the whole loop, train -> evaluate -> promote or refuse -> report.

For each kind: train a candidate from the logged decisions of the earlier part of the window
(modeling/from_logs.py), then judge it against the serving version on the later part, which
it never saw (modeling/lifecycle.py): the gate promotes it or records the refusal. The report
is printed (and written as JSON with --out). docs/learning.md § Nightly shows cron and
Kubernetes set-ups. Exit code: 0 when every kind trained (promoted or refused), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from services.campaign_engine.modeling import registry
from services.campaign_engine.modeling.artifacts import ParityError
from services.campaign_engine.modeling.from_logs import train_from_logs
from services.campaign_engine.modeling.lifecycle import Judged, Place, judge_and_promote
from services.campaign_engine.modeling.promotion import PromotionError
from services.campaign_engine.modeling.registry import RegistryError
from shared.db import make_session_factory, unit_of_work

DEFAULT_EVAL_SHARE = 0.3  # the last 30% of the window judges; the first 70% trains


@dataclass(frozen=True)
class KindReport:
    """What the loop did for one kind."""

    kind: str
    candidate: str | None
    action: str  # promote | refuse | failed
    detail: str
    estimates: dict[str, Any] | None
    seconds: float

    def as_json(self) -> dict[str, Any]:
        """Plain JSON for --out."""
        return dict(vars(self))


def split_window(since: datetime, until: datetime, eval_share: float) -> datetime:
    """Where training ends and judging begins."""
    if not 0.0 < eval_share < 1.0:
        raise ValueError("the evaluation share must be between 0 and 1")
    return since + (until - since) * (1.0 - eval_share)


def retrain_kind(
    engine: Engine,
    place: Place,
    kind: str,
    since: datetime,
    until: datetime,
    *,
    actor: str,
    eval_share: float = DEFAULT_EVAL_SHARE,
    seed: int = 7,
    say: Callable[[str], None] = print,
) -> KindReport:
    """Train one candidate of `kind`, judge it, promote or refuse it; never raises for bad data."""
    t0 = time.perf_counter()
    cut = split_window(since, until, eval_share)
    say(f"{kind}: [1/3] training on decisions {since:%Y-%m-%d %H:%M} .. {cut:%Y-%m-%d %H:%M}")
    try:
        with engine.begin() as conn:
            trained = train_from_logs(
                conn,
                kind="uplift" if kind == "uplift" else "propensity",
                since=since,
                until=cut,
                model_dir=place.model_dirs[kind],
                seed=seed,
                schema=place.schema,
                progress=lambda msg: say(f"{kind}:       {msg}"),
                spend_window=place.spend_window,
                now=place.now,
            )
    except (ValueError, ParityError) as exc:
        say(f"{kind}: training failed: {exc}")
        return KindReport(kind, None, "failed", str(exc), None, time.perf_counter() - t0)
    say(
        f"{kind}: [2/3] judging {trained.version} on {cut:%Y-%m-%d %H:%M} .. {until:%Y-%m-%d %H:%M}"
    )
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            judged: Judged = judge_and_promote(
                session,
                place,
                trained.version,
                cut,
                until,
                actor=actor,
                reason="retrain",
                kind=kind,
            )
    except (PromotionError, RegistryError) as exc:  # e.g. no propensity model to price discounts
        say(f"{kind}: judging failed: {exc}")
        return KindReport(kind, trained.version, "failed", str(exc), None, time.perf_counter() - t0)
    o = judged.outcome
    say(f"{kind}: [3/3] {o.action}: {o.from_version or '(none)'} -> {o.to_version}: {o.reason}")
    return KindReport(
        kind,
        trained.version,
        o.action,
        o.reason,
        judged.comparison.as_json(),
        round(time.perf_counter() - t0, 2),
    )


def retrain_main(argv: list[str]) -> int:
    """Entry point of `tenin model retrain`."""
    from services.campaign_engine.modeling.lifecycle_cli import (
        actor,
        common_arguments,
        place_from,
        window,
    )
    from shared.config import Settings
    from shared.db import make_engine

    ap = argparse.ArgumentParser(prog="tenin model retrain", description=__doc__)
    common_arguments(ap)
    ap.add_argument("--eval-share", type=float, default=DEFAULT_EVAL_SHARE)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    args = ap.parse_args(argv)
    if not 0.0 < args.eval_share < 1.0:
        ap.error("--eval-share must be between 0 and 1")
    settings = Settings.from_env()
    engine = make_engine(args.database_url or settings.effective_database_url, pool_size=1)
    place = place_from(args, settings, engine.dialect.name)
    since, until = window(args)
    reports = []
    try:
        for kind in [args.kind] if args.kind else list(registry.KINDS):
            reports.append(
                retrain_kind(
                    engine,
                    place,
                    kind,
                    since,
                    until,
                    actor=actor(args),
                    eval_share=args.eval_share,
                    seed=args.seed,
                    say=lambda msg: print(msg, flush=True),
                )
            )
    finally:
        engine.dispose()
    print("| kind | candidate | action | detail | seconds |")
    print("|---|---|---|---|---:|")
    for r in reports:
        print(f"| {r.kind} | {r.candidate or '-'} | {r.action} | {r.detail} | {r.seconds} |")
    if args.out:
        args.out.write_text(json.dumps([r.as_json() for r in reports], indent=2) + "\n")
    return 0 if all(r.action != "failed" for r in reports) else 1
