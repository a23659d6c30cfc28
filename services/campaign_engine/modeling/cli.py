"""The `tenin model train|evaluate` command lines (tenin/cli.py hands their arguments here).

`evaluate --candidate` and `--logs`, and `list|promote|rollback`, live in
modeling/lifecycle_cli.py; `retrain` in modeling/retrain.py.

`python -m services.campaign_engine.modeling.uplift` (modeling/uplift.py) prints the
incremental-profit comparison of the shipped models.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Connection, create_engine

from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.modeling import dataset, evaluate, train
from services.campaign_engine.modeling.artifacts import ParityError
from services.campaign_engine.modeling.from_logs_cli import (
    aware_datetime,
    from_logs_arguments,
    from_logs_main,
)
from services.campaign_engine.modeling.lifecycle_cli import (
    evaluate_candidate_main,
    evaluate_logs_main,
)
from services.campaign_engine.modeling.uplift import UPLIFT_PARAMS, train_uplift
from shared.config import DEFAULT_MODEL_DIR, DEFAULT_UPLIFT_DIR
from shared.model.scoring import PropensityScorer

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tenin model train", description=train.__doc__)
    ap.add_argument(
        "--from", dest="source", choices=["simulator", "decision-log"], default="simulator"
    )
    ap.add_argument("--kind", choices=["propensity", "uplift"], default="propensity")
    ap.add_argument(
        "--rows",
        type=int,
        default=None,
        help="simulated rows (default 200,000; uplift 1,000,000: its signal is faint)",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--trees", type=int, default=None, help="boosting rounds (default 200; uplift 100)"
    )
    ap.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help=f"default {DEFAULT_MODEL_DIR} (uplift: models/uplift)",
    )
    ap.add_argument("--database-url", default=None, help="decision-log source: SQLAlchemy URL")
    ap.add_argument(
        "--schema", default=None, help="decision-log schema (Postgres: campaign_engine)"
    )
    ap.add_argument("--no-set-current", action="store_true", help="write the version, keep CURRENT")
    ap.add_argument("--out", type=Path, default=None, help="also write the model card here")
    from_logs_arguments(ap)
    return ap


def _basic_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


def _from_decision_log(url: str | None, read: Callable[[Connection], T]) -> T | None:
    """`read` on a connection to the decision log, or None (logged) without --database-url."""
    if not url:
        log.error("--from decision-log needs --database-url")
        return None
    with create_engine(url, hide_parameters=True).connect() as conn:
        return read(conn)


def _trained(
    what: str,
    fit: Callable[[R, Path, train.TrainParams, int, bool], dict[str, Any]],
    rows: R,
    model_dir: Path,
    params: train.TrainParams,
    args: argparse.Namespace,
) -> dict[str, Any] | None:
    """The model card of a fit written to `model_dir`, or None (logged) when it failed."""
    try:
        return fit(rows, model_dir, params, args.seed, not args.no_set_current)
    except (ValueError, ParityError) as exc:
        log.error("%s failed: %s", what, exc)
        return None


def train_main(argv: list[str]) -> int:
    """Entry point for `tenin model train`; returns a process exit code."""
    args = _parser().parse_args(argv)
    _basic_logging()
    if args.from_logs:
        return from_logs_main(args)
    if args.kind == "uplift":
        args.rows = args.rows or 1_000_000
        return train_uplift_main(args, replace(UPLIFT_PARAMS, n_estimators=args.trees or 100))
    args.rows = args.rows or 200_000
    params = train.TrainParams(n_estimators=args.trees or train.TrainParams.n_estimators)
    if args.source == "simulator":
        log.info("simulating %d training rows (seed %d)", args.rows, args.seed)
        rows = dataset.simulated_rows(args.rows, args.seed)
    else:
        read = _from_decision_log(
            args.database_url, lambda conn: dataset.rows_from_decision_log(conn, args.schema)
        )
        if read is None:
            return 2
        rows = read
        log.info("read %d labelled decisions from the log", len(rows))
    model_dir = args.model_dir or DEFAULT_MODEL_DIR
    card = _trained("training", train.train_propensity, rows, model_dir, params, args)
    if card is None:
        return 1
    summary = {k: card[k] for k in ("version", "training_rows", "auc", "max_parity_gap")}
    print(json.dumps(summary))
    if args.out:
        args.out.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return 0


def train_uplift_main(args: argparse.Namespace, params: train.TrainParams) -> int:
    """`tenin model train --kind uplift`: simulate randomised rows, train, show the comparison."""
    if args.source != "simulator":
        log.error(
            "uplift training needs purchases of held-out customers in the window; "
            "only --from simulator provides them so far"
        )
        return 2
    t0 = time.perf_counter()
    log.info("simulating %d randomised treated/holdout rows (seed %d)", args.rows, args.seed)
    rows = dataset.simulated_uplift_rows(args.rows, args.seed)
    model_dir = args.model_dir or DEFAULT_UPLIFT_DIR
    card = _trained("uplift training", train_uplift, rows, model_dir, params, args)
    if card is None:
        return 1
    log.info("wrote uplift model %s in %.1fs", card["version"], time.perf_counter() - t0)
    print(
        json.dumps(
            {
                k: card[k]
                for k in ("version", "training_rows", "r2_treated", "r2_control", "max_parity_gap")
            }
        )
    )
    return 0


def _evaluate_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tenin model evaluate", description=evaluate.__doc__)
    ap.add_argument(
        "--from", dest="source", choices=["simulator", "decision-log"], default="simulator"
    )
    ap.add_argument(
        "--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="candidate model (its CURRENT)"
    )
    ap.add_argument("--rows", type=int, default=20_000, help="simulated decisions")
    ap.add_argument("--seed", type=int, default=202)
    ap.add_argument("--mode", choices=["greedy", "epsilon_greedy", "softmax"], default="greedy")
    ap.add_argument("--epsilon", type=float, default=0.05)
    ap.add_argument("--temperature", type=float, default=10.0)
    ap.add_argument(
        "--logging-epsilon",
        type=float,
        default=1.0,
        help="simulator: the logging policy explores this share (1.0 = uniformly random)",
    )
    ap.add_argument("--margin-rate", type=float, default=0.30)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--schema", default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the estimates as JSON here")
    logged = ap.add_argument_group("a registered candidate, or an exported log (docs/learning.md)")
    logged.add_argument("--candidate", default=None, help="VERSION against the serving one")
    logged.add_argument("--kind", choices=["propensity", "uplift"], default=None)
    logged.add_argument("--uplift-dir", type=Path, default=DEFAULT_UPLIFT_DIR)
    logged.add_argument("--since", type=aware_datetime, default=None)
    logged.add_argument("--until", type=aware_datetime, default=None)
    logged.add_argument("--spend-window-days", type=float, default=7.0)
    logged.add_argument("--logs", type=Path, default=None, help="a CSV or Parquet bandit file")
    logged.add_argument("--policy", default=None, help="with --logs: the propensity VERSION")
    return ap


def evaluate_main(argv: list[str]) -> int:
    """Entry point for `tenin model evaluate`; returns a process exit code."""
    args = _evaluate_parser().parse_args(argv)
    _basic_logging()
    if args.candidate:
        return evaluate_candidate_main(args)
    if args.logs:
        return evaluate_logs_main(args)
    scorer = PropensityScorer(args.model_dir)
    config = PolicyConfig(
        mode=args.mode,
        epsilon=args.epsilon,
        temperature=args.temperature,
        margin_rate=args.margin_rate,
    )
    if args.source == "simulator":
        log.info(
            "simulating %d logged decisions (logging epsilon %.2f)", args.rows, args.logging_epsilon
        )
        world = dataset.SimWorld.create(max(2000, args.rows // 4), args.seed)
        logging_config = PolicyConfig(
            mode="epsilon_greedy", epsilon=args.logging_epsilon, margin_rate=args.margin_rate
        )
        bandit = evaluate.simulate_log(
            world, args.rows, args.seed, logging_config, scorer.score, args.margin_rate
        )
    else:
        read = _from_decision_log(
            args.database_url,
            lambda conn: evaluate.log_from_decision_log(
                conn, datetime.now(UTC), args.schema, args.margin_rate
            ),
        )
        if read is None:
            return 2
        bandit, partial = read
        if partial:
            log.warning(
                "%d decisions were logged without their other candidates; "
                "the estimate treats the chosen offer as the only one",
                partial,
            )
    if len(bandit) == 0:
        log.error("no decisions with a known outcome to evaluate")
        return 1
    p_hat = scorer.score(bandit.X) if len(bandit.X) else np.zeros(0)
    results = evaluate.estimate(bandit, p_hat, config)
    print(evaluate.format_report(results, scorer.model_version, config))
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "model_version": scorer.model_version,
                    "policy": asdict(config),
                    **{k: asdict(v) for k, v in results.items()},
                },
                indent=2,
            )
            + "\n"
        )
    return 0
