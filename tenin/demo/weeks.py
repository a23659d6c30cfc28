"""`tenin demo --weeks N --retrain`: simulated weeks of the learning loop (docs/learning.md § Weeks demo).

Each week the serving models decide a week of simulated offer requests with the engine's own
policy (decisions/policy.py decide: uplift ranking, epsilon exploration, then the campaign
holdout by keyed hash); the decisions, redemptions and sales land in the engine's tables
(decisions, redemptions_seen, customer_sales) of a SQLite database; then `tenin model
retrain`'s loop (modeling/retrain.py) trains an uplift candidate from the logs so far, judges
it against the serving one on the latest 30% of them and promotes or refuses it, moving CURRENT,
which the running scorers reload. Before the first week and after each, the served policy is
scored on a fixed evaluation population by the simulator's hidden truth (modeling/uplift.py
compare_policies), next to the oracle. The first week serves the shipped propensity model
alone (ranking by expected redemption value), as a new install does.

It drives the engine's code in process: not the HTTP webhook, Kafka and POS path of
`tenin demo` (tenin/demo/runner.py), which would take hours per simulated week here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from migrations.metadata import target_metadata
from services.campaign_engine.decisions.policy import PolicyConfig, decide, in_holdout
from services.campaign_engine.modeling.dataset import SimWorld
from services.campaign_engine.modeling.gate import promotion_margin
from services.campaign_engine.modeling.lifecycle import Place
from services.campaign_engine.modeling.retrain import KindReport, retrain_kind
from services.campaign_engine.modeling.simulated_log import SimulatedLog, write_log
from services.campaign_engine.modeling.uplift import compare_policies
from shared.config import DEFAULT_MODEL_DIR
from shared.db import make_engine
from shared.model.scoring import PropensityScorer, UpliftScorer, read_current
from shared.model.simulator import draw_window_outcome
from tenin.demo.weeks_report import WeekRow, write_outputs

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday; simulated time, so runs are repeatable
WINDOW = timedelta(days=3)  # coupon validity = spend window = the truth's incremental window
CAMPAIGN = "weeks-demo-campaign"
REASONS = {"treatment": "exploit", "explore": "explore", "none": "policy_chose_none"}


@dataclass(frozen=True)
class WeeksOptions:
    weeks: int = 4
    decisions_per_week: int = 6000
    customers: int = 6000
    eval_requests: int = 4000
    seed: int = 7
    holdout_pct: float = 20.0  # as `tenin demo`'s campaign
    epsilon: float = 0.1
    out_dir: Path = Path(".")


def served_policy(
    eval_world: SimWorld, opts: WeeksOptions, prop: PropensityScorer, upl: UpliftScorer | None
) -> tuple[str, float, float]:
    results = {
        r.policy: r for r in compare_policies(eval_world, prop, upl, opts.eval_requests, 90_001)
    }
    name = "uplift (T-learner)" if upl else "propensity (EV)"
    version = upl.model_version if upl else prop.model_version
    return f"{name} {version}", results[name].per_1000(), results["oracle (truth)"].per_1000()


def candidate_truth(
    eval_world: SimWorld,
    opts: WeeksOptions,
    prop: PropensityScorer,
    upl_dir: Path,
    version: str | None,
    state: Path,
) -> float | None:
    """What the week's candidate would earn by the truth, promoted or not (checks the gate)."""
    if version is None:
        return None
    view = state / "candidate-view"  # a model directory whose CURRENT names the candidate
    shutil.rmtree(view, ignore_errors=True)
    view.mkdir()
    (view / version).symlink_to(upl_dir / version, target_is_directory=True)
    (view / "CURRENT").write_text(version + "\n", encoding="utf-8")
    return served_policy(eval_world, opts, prop, UpliftScorer(view))[1]


def after_week(
    week: int,
    eval_world: SimWorld,
    opts: WeeksOptions,
    prop: PropensityScorer,
    uplift: tuple[Path, UpliftScorer | None],
    report: KindReport,
    state: Path,
) -> tuple[WeekRow, UpliftScorer | None]:
    """After the week's loop: its candidate and the served policy by the truth, the serving
    uplift scorer (opened at the first promotion, reloaded as a running worker does after)."""
    upl_dir, upl = uplift
    judged = candidate_truth(eval_world, opts, prop, upl_dir, report.candidate, state)
    if upl is None and (upl_dir / "CURRENT").exists():
        upl = UpliftScorer(upl_dir, reload_interval_s=0.0)
    elif upl is not None:
        upl.maybe_reload()  # what a running worker does between requests
    name, per_1000, oracle = served_policy(eval_world, opts, prop, upl)
    row = WeekRow(week, name, per_1000, oracle, report.candidate, judged, report.action)
    row.reason, row.estimates = report.detail, report.estimates
    return row, upl


def log_week(
    world: SimWorld,
    week: int,
    opts: WeeksOptions,
    prop: PropensityScorer,
    upl: UpliftScorer | None,
    secret: str,
) -> SimulatedLog:
    """One simulated week of decisions by the serving policy, with their drawn outcomes."""
    rng = np.random.default_rng([opts.seed, week, 5])
    policy = PolicyConfig(mode="epsilon_greedy", epsilon=opts.epsilon, uplift=upl is not None)
    version = upl.model_version if upl else prop.model_version
    out, step = SimulatedLog(), timedelta(days=7) / opts.decisions_per_week
    requests = world.requests(opts.decisions_per_week, opts.seed * 1000 + week, (2, 4))
    for i, req in enumerate(requests):
        at = START + timedelta(days=7 * week) + step * i
        who = f"w{week}-c{i}"  # one id per decision: spend windows never overlap (as simulated_log)
        choice = decide(prop, req.features, req.context, req.offers, policy, rng, upl)
        pick = choice.index
        held = pick is not None and in_holdout(who, CAMPAIGN, secret, opts.holdout_pct)
        sent = pick is not None and not held
        offer = req.offers[pick if pick is not None else 0]
        outcome = draw_window_outcome(req.customer, req.context, offer, sent, rng, WINDOW.days)
        code = f"W{week}-{i}" if sent else None
        reason = "holdout" if held else REASONS[choice.arm]
        matrix = choice.matrix if choice.matrix is not None else np.zeros((0, 0))
        out.decisions.append(
            {
                "decision_id": f"{week:08x}-0000-4000-8000-{i:012x}",
                "request_id": f"weeks-{week}-{i}",
                "customer_id": who,
                "campaign_id": CAMPAIGN if pick is not None else None,
                "offer_id": f"offer-{pick}" if sent else None,
                "arm": "holdout" if held else choice.arm,
                "propensity": choice.propensity,
                "score": choice.score,
                "model_version": version,
                "features": json.dumps({"candidates": matrix.tolist(), "chosen": pick}),
                "reason": reason,
                "candidates": [
                    {"offer_id": f"offer-{j}", "score": s, "ev": v}
                    for j, (s, v) in enumerate(zip(choice.scores, choice.values, strict=True))
                ],
                "coupon_code": code,
                "expires_at": at + WINDOW if sent else None,
                "decided_at": at,
            }
        )
        if outcome.redeemed and code:
            redeemed = {"coupon_code": code, "transaction_id": f"r-{code}", "voided": False}
            out.redemptions.append(
                {**redeemed, "redeemed_at": at + WINDOW * 0.5, "discount": int(offer.discount_yen)}
            )
        if outcome.spend > 0:
            out.sales.append(
                {
                    "transaction_id": f"s-{week}-{i}",
                    "customer_id": who,
                    "amount": int(round(outcome.spend)),
                    "occurred_at": at + WINDOW * float(rng.uniform(0.001, 0.999)),
                }
            )
    return out


def _prefixed(say: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    return lambda msg: say(prefix + msg)


def run_weeks(opts: WeeksOptions, say: Callable[[str], None] = print) -> list[WeekRow]:
    """The whole run; returns one row per measurement (before week 1, then after each week)."""
    state = Path(tempfile.mkdtemp(prefix="tenin-weeks-"))
    try:
        return _run(opts, state, say)
    finally:
        shutil.rmtree(state, ignore_errors=True)


def _run(opts: WeeksOptions, state: Path, say: Callable[[str], None]) -> list[WeekRow]:
    prop_dir, upl_dir = state / "propensity", state / "uplift"
    shipped = read_current(DEFAULT_MODEL_DIR)
    shutil.copytree(DEFAULT_MODEL_DIR / shipped, prop_dir / shipped)
    (prop_dir / "CURRENT").write_text(shipped + "\n", encoding="utf-8")
    upl_dir.mkdir()
    engine = make_engine(f"sqlite:///{state / 'tenin.db'}")
    target_metadata.create_all(engine)
    world = SimWorld.create(opts.customers, opts.seed)
    eval_world = SimWorld.create(opts.eval_requests, opts.seed + 50_000)  # never trained on
    prop = PropensityScorer(prop_dir, reload_interval_s=0.0)
    upl: UpliftScorer | None = None
    rows = [WeekRow(0, *served_policy(eval_world, opts, prop, upl))]
    say(
        f"week 0: {rows[0].served}: {rows[0].per_1000:,.0f} yen per 1,000 requests "
        f"(oracle {rows[0].oracle_per_1000:,.0f})"
    )
    try:
        for week in range(opts.weeks):
            with engine.begin() as conn:
                write_log(conn, log_week(world, week, opts, prop, upl, "weeks-demo-secret"))
            end = START + timedelta(days=7 * (week + 1))
            place = Place(
                model_dirs={"propensity": prop_dir, "uplift": upl_dir},
                policy=PolicyConfig(mode="epsilon_greedy", epsilon=opts.epsilon),
                margins={
                    "propensity": promotion_margin({}, "propensity"),
                    "uplift": promotion_margin({}, "uplift"),
                },
                spend_window=WINDOW,
                now=end + 2 * WINDOW,
            )
            report = retrain_kind(
                engine,
                place,
                "uplift",
                START,
                end,
                actor="weeks-demo",
                seed=opts.seed + week,
                say=_prefixed(say, f"week {week + 1}: "),
            )
            row, upl = after_week(week + 1, eval_world, opts, prop, (upl_dir, upl), report, state)
            rows.append(row)
            say(
                f"week {week + 1}: {row.served}: {row.per_1000:,.0f} yen per 1,000 requests "
                f"(oracle {row.oracle_per_1000:,.0f}; the week's candidate "
                f"{row.candidate_per_1000 or 0:,.0f})"
            )
    finally:
        engine.dispose()
    return rows


def options_from(parser: argparse.ArgumentParser, args: argparse.Namespace) -> WeeksOptions:
    """The weeks demo's options from `tenin demo`'s arguments (exits on bad usage)."""
    if not args.retrain or not args.weeks or args.weeks < 1:
        parser.error("the learning-loop demo needs both --retrain and --weeks N (N >= 1)")
    if args.decisions_per_week < 500:
        parser.error("--decisions-per-week must be at least 500")
    return WeeksOptions(
        weeks=args.weeks,
        decisions_per_week=args.decisions_per_week,
        customers=max(2000, args.decisions_per_week),
        seed=args.seed,
        holdout_pct=args.holdout_pct,
        out_dir=args.out,
    )


def report_weeks(rows: list[WeekRow], out_dir: Path) -> int:
    """Write the chart and tables to out_dir and print the table."""
    paths = write_outputs(rows, out_dir.resolve())
    print(paths["md"].read_text(encoding="utf-8"))
    print(f"chart: {paths['svg']}")
    return 0


def weeks_main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """`tenin demo --weeks N --retrain`: run in process, then write the chart and tables."""
    opts = options_from(parser, args)
    return report_weeks(run_weeks(opts, say=lambda msg: print(msg, flush=True)), args.out)
