"""A decision log as the engine would have written it, from the simulator: for tests, the
training benchmark and demos of the learning loop (docs/architecture.md § Measurement, "Decision log").

Each simulated request is decided by a logging policy (epsilon-greedy over a scorer's EV),
held out at the campaign's rate, and its outcome drawn from the simulator's hidden truth:
redemption within the coupon's validity and spend over the window after the decision.
Rows have the columns of decisions, redemptions_seen and customer_sales.

Simplification: each decision has a customer id of its own (`sim-<seed>-<i>`), so the spend
windows of one person's decisions never overlap and the join's answer is exactly the drawn
spend; the population behind them still repeats people.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, insert

from services.campaign_engine.decisions.learning_log import logged_matrix
from services.campaign_engine.decisions.policy import PolicyConfig, choose_action, offer_values
from services.campaign_engine.modeling.dataset import SimWorld
from services.campaign_engine.models import CustomerSale, Decision, RedemptionSeen
from shared.model.features import feature_matrix
from shared.model.simulator import draw_window_outcome, p_redeem_many

LOGGING_POLICY = PolicyConfig(mode="epsilon_greedy", epsilon=0.3)


@dataclass
class SimulatedLog:
    """Rows for the three tables the join reads."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    redemptions: list[dict[str, Any]] = field(default_factory=list)
    sales: list[dict[str, Any]] = field(default_factory=list)


def simulated_log(
    n: int,
    seed: int,
    start: datetime,
    *,
    span: timedelta = timedelta(days=14),
    validity: timedelta = timedelta(days=7),
    holdout_pct: float = 10.0,
    policy: PolicyConfig = LOGGING_POLICY,
    scores: Callable[[np.ndarray], np.ndarray] | None = None,
    model_version: str = "sim-logging",
    world: SimWorld | None = None,
    candidates: tuple[int, int] = (2, 4),
    outcomes_within: timedelta | None = None,
) -> SimulatedLog:
    """`n` decisions spread evenly over [start, start + span), with their outcomes.

    The outcomes (sales and redemptions) are drawn for a window as long as the coupon's
    validity and placed in it; `outcomes_within` squeezes them into a shorter span after the
    decision, as the live demo's compressed days do while coupons expire in wall-clock hours.
    """
    placed_in = min(validity, outcomes_within or validity)
    world = world or SimWorld.create(max(2000, n // 10), seed)
    rng = np.random.default_rng([seed, 61])
    out = SimulatedLog()
    step = span / max(1, n)
    for i, req in enumerate(world.requests(n, seed, candidates)):
        X = feature_matrix(req.features, req.context, req.offers)
        p_log = scores(X) if scores else p_redeem_many(req.customer, req.context, req.offers)
        choice = choose_action(
            req.offers, p_log, offer_values(req.offers, policy.margin_rate), policy, rng
        )
        decided = start + step * i
        customer_id = f"sim-{seed}-{i}"
        held = choice.index is not None and rng.random() < holdout_pct / 100.0
        sent = choice.index is not None and not held
        offer = req.offers[choice.index if choice.index is not None else 0]
        outcome = draw_window_outcome(
            req.customer, req.context, offer, sent, rng, validity / timedelta(days=1)
        )
        code = f"SIM{seed}-{i}" if sent else None
        out.decisions.append(
            {
                "decision_id": f"{seed % 2**32:08x}-0000-4000-8000-{i:012x}",
                "request_id": f"req-{seed}-{i}",
                "customer_id": customer_id,
                "campaign_id": "sim-campaign" if choice.index is not None else None,
                "offer_id": f"offer-{choice.index}" if sent else None,
                "arm": "holdout" if held else choice.arm,
                "propensity": choice.propensity,
                "score": choice.score,
                "model_version": model_version,
                "features": logged_matrix(X, choice.index),
                "reason": _reason(held, choice.arm),
                "candidates": [
                    {
                        "campaign_id": "sim-campaign",
                        "offer_id": f"offer-{j}",
                        "p": round(float(pr), 6),
                        "score": round(float(s), 6),
                        "ev": round(float(v), 3),
                    }
                    for j, (s, v, pr) in enumerate(
                        zip(choice.scores, choice.values, choice.probabilities, strict=False)
                    )
                ],
                "coupon_code": code,
                "expires_at": decided + validity if sent else None,
                "decided_at": decided,
            }
        )
        if outcome.redeemed and code:
            out.redemptions.append(
                {
                    "coupon_code": code,
                    "transaction_id": f"rtx-{seed}-{i}",
                    "redeemed_at": decided + placed_in * float(rng.random()),
                    "voided": False,
                    "discount": int(offer.discount_yen),
                }
            )
        if outcome.spend > 0:
            out.sales.append(
                {
                    "transaction_id": f"stx-{seed}-{i}",
                    "customer_id": customer_id,
                    "amount": int(round(outcome.spend)),
                    "occurred_at": decided + placed_in * (0.001 + 0.998 * float(rng.random())),
                }
            )
    return out


def write_log(conn: Any, log: SimulatedLog) -> None:
    """Insert the rows on a Connection (or Session); fine for test-sized logs, not a million."""
    for model, rows in (
        (Decision, log.decisions),
        (RedemptionSeen, log.redemptions),
        (CustomerSale, log.sales),
    ):
        if rows:
            conn.execute(insert(cast(Table, model.__table__)), rows)


def _reason(held: bool, arm: str) -> str:
    if held:
        return "holdout"
    return {"none": "policy_chose_none", "explore": "explore"}.get(arm, "exploit")
