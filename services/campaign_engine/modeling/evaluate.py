"""`tenin model evaluate`: how a candidate model's policy would have done, from logged decisions.

Off-policy estimators over decisions logged with the probability of their action:
IPS (inverse propensity), SNIPS (self-normalised) and doubly robust (the candidate model as the
direct-method baseline). Reward = yen the redemption is worth to the retailer (0 if unused).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from services.campaign_engine.decisions.policy import (
    PolicyConfig,
    action_probabilities,
    choose_action,
    offer_values,
    values_from_features,
)
from services.campaign_engine.modeling.dataset import (
    SimWorld,
    decision_log_records,
    parse_features,
    redeemed_in_window,
    window_closed,
)
from shared.model.features import DEFAULT_TYPICAL_BASKET, N_FEATURES, feature_matrix
from shared.model.simulator import p_redeem_many

log = logging.getLogger(__name__)
Z95 = 1.959964


@dataclass(frozen=True)
class BanditLog:
    """Logged decisions with every candidate they chose among (concatenated, split by offsets)."""

    X: np.ndarray  # (m, N_FEATURES) candidate feature vectors
    offsets: np.ndarray  # (n + 1,): decision i's candidates are rows offsets[i]:offsets[i+1]
    values: np.ndarray  # (m,) yen one redemption of each candidate is worth
    chosen: np.ndarray  # (n,) index within the decision's candidates, -1 for no coupon
    propensity: np.ndarray  # (n,) logged probability of the chosen action
    reward: np.ndarray  # (n,) yen: value of the chosen offer if redeemed in its window, else 0
    p_true: np.ndarray | None = None  # (m,) simulator only: hidden P(redeem) of each candidate

    def __len__(self) -> int:
        return len(self.chosen)


@dataclass(frozen=True)
class Estimate:
    """A policy value (yen per decision) with a 95% interval."""

    value: float
    low: float
    high: float
    n: int

    def covers(self, x: float) -> bool:
        """Whether x lies within the interval."""
        return self.low <= x <= self.high


def _mean_interval(x: np.ndarray) -> Estimate:
    n = len(x)
    se = float(np.std(x, ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    m = float(np.mean(x)) if n else float("nan")
    return Estimate(m, m - Z95 * se, m + Z95 * se, n)


def target_probabilities(
    log: BanditLog, p_hat: np.ndarray, config: PolicyConfig
) -> list[np.ndarray]:
    """The candidate policy's probability of each action per decision (last entry: no coupon)."""
    ev = p_hat * log.values
    return [
        action_probabilities(ev[a:b], config)
        for a, b in zip(log.offsets[:-1], log.offsets[1:], strict=True)
    ]


def estimate(log: BanditLog, p_hat: np.ndarray, config: PolicyConfig) -> dict[str, Estimate]:
    """IPS, SNIPS and doubly-robust values of the candidate policy; plus the logging policy's own."""
    probs = target_probabilities(log, p_hat, config)
    q_hat = p_hat * log.values
    pi_chosen = np.empty(len(log))
    q_chosen = np.zeros(len(log))
    direct = np.empty(len(log))
    for i, (a, pr) in enumerate(zip(log.offsets[:-1], probs, strict=True)):
        c = int(log.chosen[i])
        pi_chosen[i] = pr[c] if c >= 0 else pr[-1]
        if c >= 0:
            q_chosen[i] = q_hat[a + c]
        direct[i] = float(pr[:-1] @ q_hat[a : a + len(pr) - 1])
    w = pi_chosen / log.propensity
    r = log.reward
    snips = float(np.sum(w * r) / np.sum(w)) if np.sum(w) > 0 else float("nan")
    # Delta method for a ratio estimator.
    se = (
        float(np.sqrt(np.sum((w * (r - snips)) ** 2)) / np.sum(w))
        if np.sum(w) > 0
        else float("inf")
    )
    out = {
        "ips": _mean_interval(w * r),
        "snips": Estimate(snips, snips - Z95 * se, snips + Z95 * se, len(log)),
        "doubly_robust": _mean_interval(direct + w * (r - q_chosen)),
        "logging_policy": _mean_interval(r),
    }
    if log.p_true is not None:
        true_q = log.p_true * log.values
        candidate = [
            float(pr[:-1] @ true_q[a : a + len(pr) - 1])
            for a, pr in zip(log.offsets[:-1], probs, strict=True)
        ]
        out["truth_candidate"] = _point(float(np.mean(candidate)))
        logged = [
            true_q[a + c] if c >= 0 else 0.0
            for a, c in zip(log.offsets[:-1], log.chosen, strict=True)
        ]
        out["truth_logging"] = _point(float(np.mean(logged)))
    return out


def _point(x: float) -> Estimate:
    return Estimate(float(x), float(x), float(x), 0)


def simulate_log(
    world: SimWorld,
    n: int,
    seed: int,
    logging_config: PolicyConfig,
    logging_scores: Callable[[np.ndarray], np.ndarray] | None = None,
    margin_rate: float = 0.30,
) -> BanditLog:
    """Decisions made by a logging policy on simulated requests, redeemed per the hidden truth."""
    rng = np.random.default_rng([seed, 41])
    xs, values, p_true, offsets = [], [], [], [0]
    chosen, props, rewards = [], [], []
    for req in world.requests(n, seed, (2, 6)):
        X = feature_matrix(req.features, req.context, req.offers)
        v = offer_values(req.offers, margin_rate)
        pt = p_redeem_many(req.customer, req.context, req.offers)
        p_log = logging_scores(X) if logging_scores else np.full(len(X), 0.05)
        choice = choose_action(req.offers, p_log, v, logging_config, rng)
        c = -1 if choice.index is None else choice.index
        redeemed = c >= 0 and rng.random() < pt[c]
        xs.append(X)
        values.append(v)
        p_true.append(pt)
        offsets.append(offsets[-1] + len(X))
        chosen.append(c)
        props.append(choice.propensity)
        rewards.append(float(v[c]) if redeemed else 0.0)
    return BanditLog(
        np.concatenate(xs),
        np.array(offsets),
        np.concatenate(values),
        np.array(chosen),
        np.array(props),
        np.array(rewards),
        np.concatenate(p_true),
    )


def log_from_decision_log(
    session: Any,
    now: datetime,
    schema: str | None = None,
    margin_rate: float = 0.30,
    typical_basket: float = DEFAULT_TYPICAL_BASKET,
) -> tuple[BanditLog, int]:
    """Decisions whose outcome is known, as a BanditLog; also how many lacked their full candidate set.

    The log may hold only the chosen offer's vector (a list) or every candidate
    ({"candidates": [...], "chosen": i}); with the former the chosen offer is taken as the only
    candidate, which is exact for one-offer requests and an approximation otherwise.
    """
    xs: list[np.ndarray] = []
    offsets, chosen, props, rewards, partial = [0], [], [], [], 0
    for rec in decision_log_records(session, schema):
        if rec["coupon_code"] is not None and not window_closed(rec, now):
            continue
        feats = parse_features(rec["features"])
        if isinstance(feats, dict):
            cands, c = feats.get("candidates") or [], feats.get("chosen")
        else:
            cands, c = ([feats], 0) if feats is not None else ([], None)
            partial += 1
        X = np.asarray(cands, dtype=np.float32).reshape(-1, N_FEATURES)
        c = -1 if c is None or rec["coupon_code"] is None else int(c)
        value = values_from_features(X[c], margin_rate, typical_basket)[0] if c >= 0 else 0.0
        xs.append(X)
        offsets.append(offsets[-1] + len(X))
        chosen.append(c)
        props.append(float(rec["propensity"]))
        rewards.append(float(value) if c >= 0 and redeemed_in_window(rec) else 0.0)
    X_all = np.concatenate(xs) if xs else np.zeros((0, N_FEATURES), dtype=np.float32)
    bl = BanditLog(
        X_all,
        np.array(offsets),
        values_from_features(X_all, margin_rate, typical_basket) if len(X_all) else np.zeros(0),
        np.array(chosen, dtype=np.int64),
        np.array(props),
        np.array(rewards),
    )
    return bl, partial


def format_report(results: dict[str, Estimate], version: str, config: PolicyConfig) -> str:
    """A small table of the estimates."""
    lines = [
        f"candidate model {version}, policy {config.mode}"
        + (f" (epsilon {config.epsilon})" if config.mode == "epsilon_greedy" else ""),
        "| estimate | yen per decision | 95% interval | n |",
        "|---|---:|---|---:|",
    ]
    for name, e in results.items():
        interval = "" if e.n == 0 else f"[{e.low:.2f}, {e.high:.2f}]"
        lines.append(f"| {name} | {e.value:.2f} | {interval} | {e.n} |")
    return "\n".join(lines)
