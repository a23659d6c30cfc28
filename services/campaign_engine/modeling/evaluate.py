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
    # (n,) yen a coupon sent costs as a push message (a drop's decision), None: replies only.
    # `reward` is already net of it where a coupon went out.
    costs: np.ndarray | None = None

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
    return propensity_target(log, p_hat, config).probs


@dataclass(frozen=True)
class Target:
    """A policy on logged decisions: per decision, its probability of each action and the direct
    model's reward of each (both with "no coupon" last)."""

    probs: list[np.ndarray]
    q_hat: list[np.ndarray]

    def with_known(self, known: list[np.ndarray | None], reward: np.ndarray) -> Target:
        """The same policy whose direct model is the logged reward wherever it is known.

        known[i] marks the actions (no coupon last) that would have earned decision i exactly
        what its logged action earned, e.g. every offer of the campaign a customer is held
        out of: no policy can send those customers that campaign's coupon. There the
        direct estimate is exact and the residual of the logged action is 0.
        """
        q_hat = []
        for q, mask, r in zip(self.q_hat, known, reward, strict=True):
            q_hat.append(q if mask is None else np.where(mask, r, q))
        return Target(self.probs, q_hat)

    def dr_terms(
        self, chosen: np.ndarray, propensity: np.ndarray, reward: np.ndarray
    ) -> np.ndarray:
        """Per decision: direct estimate + importance-weighted residual (their mean is DR)."""
        w, q_chosen, direct = self._parts(chosen, propensity)
        return direct + w * (reward - q_chosen)

    def _parts(
        self, chosen: np.ndarray, propensity: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(chosen)
        pi_chosen, q_chosen, direct = np.empty(n), np.empty(n), np.empty(n)
        for i, (pr, q) in enumerate(zip(self.probs, self.q_hat, strict=True)):
            c = int(chosen[i])
            pi_chosen[i], q_chosen[i] = (pr[c], q[c]) if c >= 0 else (pr[-1], q[-1])
            direct[i] = float(pr @ q)
        return pi_chosen / propensity, q_chosen, direct


def off_policy(
    target: Target, chosen: np.ndarray, propensity: np.ndarray, reward: np.ndarray
) -> dict[str, Estimate]:
    """IPS, SNIPS and doubly-robust values of a target policy, and the logging policy's own.

    chosen[i] is the logged action (-1 = no coupon), propensity[i] its logged probability,
    reward[i] what it earned.
    """
    w, _, _ = target._parts(chosen, propensity)
    r = reward
    total = float(np.sum(w))
    snips = float(np.sum(w * r) / total) if total > 0 else float("nan")
    # Delta method for a ratio estimator.
    se = float(np.sqrt(np.sum((w * (r - snips)) ** 2)) / total) if total > 0 else float("inf")
    return {
        "ips": _mean_interval(w * r),
        "snips": Estimate(snips, snips - Z95 * se, snips + Z95 * se, len(chosen)),
        "doubly_robust": _mean_interval(target.dr_terms(chosen, propensity, r)),
        "logging_policy": _mean_interval(r),
    }


def paired_difference(
    a: Target, b: Target, chosen: np.ndarray, propensity: np.ndarray, reward: np.ndarray
) -> Estimate:
    """DR value of policy a minus policy b on the same decisions, with a paired 95% interval:
    the outcome noise both estimates share cancels, so it is far narrower than either's."""
    return _mean_interval(
        a.dr_terms(chosen, propensity, reward) - b.dr_terms(chosen, propensity, reward)
    )


def split(x: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """Per-candidate values cut into one array per decision."""
    return [x[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def propensity_target(log: BanditLog, p_hat: np.ndarray, config: PolicyConfig) -> Target:
    """The policy ranking by P(redeem) x redemption value, less the message a push costs (as
    decisions/policy.py choose_scored does); direct model: that difference."""
    ev = split(p_hat * log.values, log.offsets)
    if log.costs is not None:
        ev = [e - cost for e, cost in zip(ev, log.costs, strict=True)]
    return Target([action_probabilities(e, config) for e in ev], [np.append(e, 0.0) for e in ev])


def estimate(log: BanditLog, p_hat: np.ndarray, config: PolicyConfig) -> dict[str, Estimate]:
    """Values of the candidate's policy (reward: redemption value); plus the logging policy's own."""
    target = propensity_target(log, p_hat, config)
    out = off_policy(target, log.chosen, log.propensity, log.reward)
    if log.p_true is not None:
        true_q = split(log.p_true * log.values, log.offsets)
        candidate = [float(pr[:-1] @ q) for pr, q in zip(target.probs, true_q, strict=True)]
        out["truth_candidate"] = _point(float(np.mean(candidate)))
        logged = [q[c] if c >= 0 else 0.0 for q, c in zip(true_q, log.chosen, strict=True)]
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
    offsets, chosen, props, rewards, costs, partial = [0], [], [], [], [], 0
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
        cost = float(rec.get("message_cost") or 0)  # a drop's push pays for its message
        earned = float(value) if c >= 0 and redeemed_in_window(rec) else 0.0
        rewards.append(earned - cost if c >= 0 else earned)
        costs.append(cost)
    X_all = np.concatenate(xs) if xs else np.zeros((0, N_FEATURES), dtype=np.float32)
    bl = BanditLog(
        X_all,
        np.array(offsets),
        values_from_features(X_all, margin_rate, typical_basket) if len(X_all) else np.zeros(0),
        np.array(chosen, dtype=np.int64),
        np.array(props),
        np.array(rewards),
        costs=np.array(costs),
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
