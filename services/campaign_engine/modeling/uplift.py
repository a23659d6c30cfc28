"""Uplift (T-learner): coupons for the persuadable, not the sure things; and what that earns on the simulator.

Two regressors of the outcome both groups share, "yen spent within the coupon's validity window":
one fitted on customers who were sent the offer, one on the held-out ones. Their difference is
the spend the coupon causes; the policy turns it into incremental profit (decisions/policy.py).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from services.campaign_engine.decisions.policy import offer_values, uplift_expected_values
from services.campaign_engine.modeling import artifacts
from services.campaign_engine.modeling.card import r_squared
from services.campaign_engine.modeling.dataset import SimWorld, UpliftRows
from services.campaign_engine.modeling.train import (
    TrainParams,
    fit_lightgbm_regressor,
    holdout_split,
)
from shared.config import DEFAULT_MODEL_DIR, DEFAULT_UPLIFT_DIR
from shared.model.features import FEATURE_NAMES, feature_matrix
from shared.model.scoring import PropensityScorer, UpliftScorer
from shared.model.simulator import (
    DEFAULT_WINDOW_DAYS,
    MARGIN_RATE,
    incremental_profit,
    p_redeem_many,
)

log = logging.getLogger(__name__)

# Spend is a noisy outcome and the uplift a small difference of two fits: few, big-leaved trees.
UPLIFT_PARAMS = TrainParams(
    n_estimators=100, num_leaves=7, max_depth=-1, learning_rate=0.1, min_child_samples=1000
)


def fit_pair(
    rows: UpliftRows, params: TrainParams, seed: int
) -> tuple[dict[str, bytes], dict[str, Any], float]:
    """Fit the treated and control spend models and export both to ONNX with the parity check.

    Returns the ONNX files, held-out metrics per role, and the larger parity gap.
    """
    files: dict[str, bytes] = {}
    metrics: dict[str, Any] = {}
    gaps = []
    for role, mask in (("treated", rows.treated), ("control", ~rows.treated)):
        X, y = rows.X[mask], rows.spend[mask]
        if len(y) < 50:
            raise ValueError(f"need at least 50 {role} rows, have {len(y)}")
        train_idx, test_idx = holdout_split(len(y), seed)
        log.info("fitting the %s spend model on %d rows", role, len(train_idx))
        w = rows.weights[mask][train_idx] if rows.weights is not None else None
        model = fit_lightgbm_regressor(X[train_idx], y[train_idx], params, seed, w)
        export = artifacts.checked_export(model, X[test_idx], f"{role}: ")
        gaps.append(export.gap)
        files[f"{role}.onnx"] = export.onnx
        pred = export.predictions
        metrics[f"{role}_rows"] = int(len(train_idx))
        metrics[f"r2_{role}"] = r_squared(y[test_idx], pred)
        metrics[f"mean_spend_{role}"] = round(float(y.mean()), 1)
    return files, metrics, max(gaps)


def train_uplift(
    rows: UpliftRows,
    model_dir: Path | str,
    params: TrainParams,
    seed: int,
    set_current: bool = True,
) -> dict[str, Any]:
    """Fit the treated and control spend models, export both to ONNX, check parity, write a version."""
    files, metrics, gap = fit_pair(rows, params, seed)
    version = artifacts.new_version("upl", files["treated.onnx"] + files["control.onnx"])
    card = {
        "version": version,
        "kind": "uplift",
        "target": f"yen spent within the {DEFAULT_WINDOW_DAYS:g}-day validity window, treated vs control",
        "outcome": "spend_yen",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": "simulator",
        "feature_names": list(FEATURE_NAMES),
        "files": {"treated": "treated.onnx", "control": "control.onnx"},
        "algorithm": "T-learner of two lightgbm.LGBMRegressor",
        "params": asdict(params),
        "seed": seed,
        "training_rows": metrics["treated_rows"] + metrics["control_rows"],
        **metrics,
        "max_parity_gap": gap,  # relative: outputs are yen
        "parity_tolerance": artifacts.PARITY_TOLERANCE,
    }
    artifacts.write_version(model_dir, version, files, card, set_current)
    return card


@dataclass(frozen=True)
class PolicyResult:
    """Expected outcome of one policy over the same simulated requests (truth, not estimates)."""

    policy: str
    requests: int
    coupons: int
    redemptions: float
    discount_cost: float  # yen
    incremental_margin: float  # yen of gross margin the coupons caused, before discounts
    incremental_profit: float  # yen: incremental margin - discount cost

    def per_1000(self) -> float:
        """Incremental profit per 1,000 requests."""
        return 1000.0 * self.incremental_profit / max(1, self.requests)


def compare_policies(
    world: SimWorld,
    propensity: PropensityScorer,
    uplift: UpliftScorer | None,
    n_requests: int,
    seed: int,
    margin_rate: float = MARGIN_RATE,
) -> list[PolicyResult]:
    """Greedy policies on the same requests, scored by the hidden truth's expected incremental profit."""
    names = [
        "no coupons",
        "random offer",
        "propensity (EV)",
        "uplift (T-learner)",
        "oracle (truth)",
    ]
    totals = {n: np.zeros(4) for n in names}  # coupons, redemptions, discount, profit
    rng = np.random.default_rng([seed, 31])
    for req in world.requests(n_requests, seed, (2, 6)):
        X = feature_matrix(req.features, req.context, req.offers)
        p_hat = propensity.score(X)
        truth_profit = incremental_profit(
            req.customer, req.context, req.offers, margin_rate=margin_rate
        )
        p_true = p_redeem_many(req.customer, req.context, req.offers)
        discounts = np.array([o.discount_yen for o in req.offers])
        picks: dict[str, int | None] = {
            "no coupons": None,
            "random offer": int(rng.integers(len(req.offers))),
            "propensity (EV)": _best(p_hat * offer_values(req.offers, margin_rate)),
            "oracle (truth)": _best(truth_profit),
        }
        if uplift is not None:
            treated, control = uplift.score(X)
            picks["uplift (T-learner)"] = _best(
                uplift_expected_values(p_hat, treated, control, req.offers, margin_rate)
            )
        for name, i in picks.items():
            if i is not None:
                totals[name] += (1, p_true[i], p_true[i] * discounts[i], truth_profit[i])
    return [
        PolicyResult(
            n, n_requests, int(t[0]), float(t[1]), float(t[2]), float(t[3] + t[2]), float(t[3])
        )
        for n, t in totals.items()
        if uplift is not None or n != "uplift (T-learner)"
    ]


def _best(ev: np.ndarray) -> int | None:
    i = int(np.argmax(ev))
    return i if ev[i] > 0 else None


def format_table(results: list[PolicyResult]) -> str:
    """A markdown table of the comparison."""
    lines = [
        "| policy | coupons sent | redemptions | discount cost (¥) | incremental margin (¥) "
        "| incremental profit (¥) | per 1,000 requests (¥) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.policy} | {r.coupons:,} | {r.redemptions:,.0f} | {r.discount_cost:,.0f} | "
            f"{r.incremental_margin:,.0f} | {r.incremental_profit:,.0f} | {r.per_1000():,.0f} |"
        )
    return "\n".join(lines)


def uplift_main(argv: list[str]) -> int:
    """Print the incremental-profit comparison of the shipped models on a fresh simulated population."""
    ap = argparse.ArgumentParser(prog="python -m services.campaign_engine.modeling.uplift")
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=101, help="differs from the training seed")
    ap.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    ap.add_argument("--uplift-dir", type=Path, default=DEFAULT_UPLIFT_DIR)
    args = ap.parse_args(argv)
    world = SimWorld.create(args.customers, args.seed)
    results = compare_policies(
        world,
        PropensityScorer(args.model_dir),
        UpliftScorer(args.uplift_dir),
        args.requests,
        args.seed,
    )
    print(format_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(uplift_main(__import__("sys").argv[1:]))
