"""A candidate version against the champion on the same logged decisions (`tenin model evaluate --candidate`).

Rewards (docs/learning.md § Rewards): a propensity model's policy is valued by the redemption
value it brings (yen of margin on the redeeming basket less the discount, 0 if unused); an
uplift model's policy by profit, margin on everything the customer spent in the window less the
discount redeemed, which counts holdout and no-coupon decisions alike.

The logged action is the policy's own pick (`intended`), with its logged probability; what the
engine did after it (hold the customer out, refuse at a cap) is part of the environment, the
same for every policy. So every logged decision counts, and the estimate is the value of the
policy deployed as the engine deploys it, holdout included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.campaign_engine.decisions.policy import PolicyConfig, values_from_features
from services.campaign_engine.modeling.evaluate import (
    BanditLog,
    Estimate,
    Target,
    estimate,
    off_policy,
    paired_difference,
    propensity_target,
)
from services.campaign_engine.modeling.outcomes import LoggedDecisions
from services.campaign_engine.modeling.profit_value import SpendLog, profit_target
from shared.model.features import DEFAULT_TYPICAL_BASKET, FEATURE_NAMES
from shared.model.scoring import LoadedModel, load_version, validate_matrix

REWARDS = {
    "propensity": "redemption value (yen per decision)",
    "uplift": "profit: margin on window spend less discount redeemed (yen per decision)",
}


_DEPTH = FEATURE_NAMES.index("discount_depth")


def bandit_log(logged: LoggedDecisions, margin_rate: float) -> BanditLog:
    """The decisions as a BanditLog; reward = the sent offer's redemption value if redeemed,
    less the message when it went out as a push (a drop's)."""
    values = values_from_features(logged.candidates_X, margin_rate)
    reward = np.zeros(len(logged))
    sent = logged.action >= 0
    reward[sent] = values[logged.offsets[:-1][sent] + logged.action[sent]] * logged.redeemed[sent]
    if logged.message_cost is not None:
        reward[sent] -= logged.message_cost[sent]
    return BanditLog(
        logged.candidates_X,
        logged.offsets,
        values,
        logged.intended,
        logged.propensity,
        reward,
        costs=logged.message_cost,
    )


def spend_log(logged: LoggedDecisions, typical_basket: float = DEFAULT_TYPICAL_BASKET) -> SpendLog:
    """The decisions as a SpendLog: window spend after each, coupon or not."""
    X = logged.candidates_X
    return SpendLog(
        X,
        logged.offsets,
        X[:, _DEPTH].astype(np.float64) * typical_basket,
        logged.intended,
        logged.propensity,
        logged.spend_after,
        logged.redeemed.astype(bool),
        known=known_rewards(logged),
        given=logged.discount,
        costs=logged.message_cost,
        paid=None if logged.message_cost is None else logged.message_cost * (logged.action >= 0),
    )


def known_rewards(logged: LoggedDecisions) -> list[np.ndarray | None]:
    """Per decision, the actions (no coupon last) that would have earned what the logged one did.

    A held-out customer gets no coupon of that campaign whatever the policy picks: every offer
    of the held-out campaign, and sending nothing, earn the same. A decision refused by the
    issuance limit would have sent nothing whatever was picked. Elsewhere: unknown (None).
    """
    out: list[np.ndarray | None] = []
    reasons = logged.reason.astype(str)
    for i, (a, b) in enumerate(zip(logged.offsets[:-1], logged.offsets[1:], strict=True)):
        pick = int(logged.intended[i])
        if reasons[i] == "rate_limited":
            out.append(np.ones(b - a + 1, dtype=bool))
        elif reasons[i] == "holdout" and pick >= 0:
            campaigns = logged.candidate_campaigns[a:b]
            held = campaigns[pick]
            same = campaigns == held if held is not None else np.arange(b - a) == pick
            out.append(np.append(same, True))
        else:
            out.append(None)
    return out


def load(model_dir: Path | str, kind: str, version: str) -> LoadedModel:
    """One version of a kind, checked and ready to score (ModelLoadError otherwise)."""
    return load_version(model_dir, version, kind)


def p_redeem(model: LoadedModel, X: np.ndarray) -> np.ndarray:
    """A propensity version's P(redeem) per row."""
    if not len(X):
        return np.zeros(0)
    return model.nets["model"].run(validate_matrix(X)).astype(np.float64)


def spend(model: LoadedModel, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An uplift version's (spend if sent, spend if not) per row, in yen."""
    if not len(X):
        return np.zeros(0), np.zeros(0)
    x = validate_matrix(X)
    return (
        model.nets["treated"].run(x).astype(np.float64),
        model.nets["control"].run(x).astype(np.float64),
    )


@dataclass(frozen=True)
class Comparison:
    """Off-policy estimates of the candidate's and the champion's policies on one log."""

    kind: str
    candidate_version: str
    candidate: dict[str, Estimate]
    champion_version: str | None
    champion: dict[str, Estimate] | None
    difference: Estimate | None = None  # candidate - champion, DR, paired on the same decisions

    def dr(self, which: str) -> Estimate | None:
        """The doubly-robust estimate of "candidate" or "champion" (None without a champion)."""
        side = self.candidate if which == "candidate" else self.champion
        return side["doubly_robust"] if side else None

    def as_json(self) -> dict[str, Any]:
        """Both sides' estimates as plain JSON."""

        def table(side: dict[str, Estimate] | None) -> dict[str, Any] | None:
            return {k: asdict(v) for k, v in side.items()} if side else None

        return {
            "kind": self.kind,
            "reward": REWARDS[self.kind],
            "candidate": {"version": self.candidate_version, **(table(self.candidate) or {})},
            "champion": (
                {"version": self.champion_version, **(table(self.champion) or {})}
                if self.champion_version
                else None
            ),
            "difference_dr": asdict(self.difference) if self.difference else None,
        }


def _compare(
    kind: str,
    ours: tuple[str, Target, dict[str, Estimate]],
    theirs: tuple[str, Target, dict[str, Estimate]] | None,
    chosen: np.ndarray,
    propensity: np.ndarray,
    reward: np.ndarray,
) -> Comparison:
    if theirs is None:
        return Comparison(kind, ours[0], ours[2], None, None)
    difference = paired_difference(ours[1], theirs[1], chosen, propensity, reward)
    return Comparison(kind, ours[0], ours[2], theirs[0], theirs[2], difference)


def compare_propensity(
    log: BanditLog, candidate: LoadedModel, champion: LoadedModel | None, config: PolicyConfig
) -> Comparison:
    """Both propensity versions' policies valued by redemption value on the same decisions."""

    def side(model: LoadedModel) -> tuple[str, Target, dict[str, Estimate]]:
        p_hat = p_redeem(model, log.X)
        return model.version, propensity_target(log, p_hat, config), estimate(log, p_hat, config)

    theirs = side(champion) if champion else None
    return _compare("propensity", side(candidate), theirs, log.chosen, log.propensity, log.reward)


def compare_uplift(
    log: SpendLog,
    p_hat: np.ndarray,
    candidate: LoadedModel,
    champion: LoadedModel | None,
    config: PolicyConfig,
) -> Comparison:
    """Both uplift versions' policies valued by profit on the same decisions (p_hat: the serving
    propensity model's P(redeem), which the uplift policy uses for the expected discount)."""
    reward = log.profit(config.margin_rate)

    def side(model: LoadedModel) -> tuple[str, Target, dict[str, Estimate]]:
        target = profit_target(log, p_hat, *spend(model, log.X), config)
        return model.version, target, off_policy(target, log.chosen, log.propensity, reward)

    theirs = side(champion) if champion else None
    return _compare("uplift", side(candidate), theirs, log.chosen, log.propensity, reward)


def format_comparison(c: Comparison) -> str:
    """A markdown table: each estimate for the candidate and the champion."""
    lines = [
        f"{c.kind}: candidate {c.candidate_version} vs champion {c.champion_version or '(none)'}",
        f"reward: {REWARDS[c.kind]}",
        "| estimate | candidate | 95% interval | champion | 95% interval | n |",
        "|---|---:|---|---:|---|---:|",
    ]
    for name, e in c.candidate.items():
        other = (c.champion or {}).get(name)
        theirs = ("—", "") if other is None else (f"{other.value:.2f}", _interval(other))
        lines.append(
            f"| {name} | {e.value:.2f} | {_interval(e)} | {theirs[0]} | {theirs[1]} | {e.n} |"
        )
    if c.difference is not None:
        d = c.difference
        lines.append(f"candidate - champion (DR, paired): {d.value:.2f} {_interval(d)}")
    return "\n".join(lines)


def _interval(e: Estimate) -> str:
    return "" if e.n == 0 else f"[{e.low:.2f}, {e.high:.2f}]"
