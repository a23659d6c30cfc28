"""The offer policy: holdout assignment, expected value per candidate, exploration, logged propensity.

Retailer value of one redemption (yen), kept deliberately small:
    basket   = max(typical basket, minimum basket)   # the redeeming visit is at least this big
    value    = margin_rate * basket - discount        # margin it brings, less the face value given away
    EV(offer)= P(redeem) * value;  EV(no coupon) = 0
The uplift variant counts only the spend the coupon causes (T-learner of window spend):
    EV(offer)= margin_rate * (spend | sent - spend | not sent) - P(redeem) * discount
A coupon that goes out as a push (a campaign drop) also costs its message, whether or not
it is redeemed, so either EV less the campaign's `message_cost` (docs/architecture.md §
Decisions): the clerk pushes only where the expected gain covers coupon and message.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np

from services.campaign_engine.budget.pacing import DEFAULT_PACING_SLACK
from shared.crypto import keyed_hmac
from shared.model.features import (
    DEFAULT_TYPICAL_BASKET,
    FEATURE_NAMES,
    CustomerFeatures,
    DecisionContext,
    OfferFeatures,
    feature_matrix,
)
from shared.model.scoring import InvalidFeatures

log = logging.getLogger(__name__)

Mode = Literal["greedy", "epsilon_greedy", "softmax"]
_DEPTH = FEATURE_NAMES.index("discount_depth")
_MIN_RATIO = FEATURE_NAMES.index("min_basket_ratio")


class Reloading(Protocol):
    """A model that names its version and picks up a new CURRENT when one is written."""

    @property
    def model_version(self) -> str: ...

    def maybe_reload(self) -> bool: ...


class Scorer(Reloading, Protocol):
    """P(redeem) per candidate row: shared.model.scoring.PropensityScorer, or a test's stand-in."""

    def score(self, matrix: np.ndarray) -> np.ndarray: ...


class UpliftScoring(Reloading, Protocol):
    """Expected spend per row if sent and if not: shared.model.scoring.UpliftScorer."""

    def score(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class PolicyConfig:
    """How the engine picks among candidates (built once from configuration, passed in)."""

    mode: Mode = "epsilon_greedy"
    epsilon: float = 0.05  # share of decisions spent exploring uniformly (epsilon_greedy)
    temperature: float = 10.0  # yen of EV per e-fold of preference (softmax)
    margin_rate: float = 0.30  # gross margin on the redeeming basket
    uplift: bool = False  # rank by incremental profit (needs an UpliftScorer)
    # Share of a paced budget that may run ahead of the even line (budget/pacing.py).
    pacing_slack: float = DEFAULT_PACING_SLACK

    def __post_init__(self) -> None:
        if self.mode not in ("greedy", "epsilon_greedy", "softmax"):
            raise ValueError(f"unknown policy mode {self.mode!r}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError("epsilon must be within [0, 1]")
        if self.temperature <= 0.0:
            raise ValueError("temperature must be positive")
        if not 0.0 <= self.pacing_slack <= 1.0:
            raise ValueError("pacing_slack must be within [0, 1]")


@dataclass(frozen=True)
class Choice:
    """The action taken; log `propensity` and the model version with it."""

    index: int | None  # candidate index, None for "no coupon"
    propensity: float  # exact probability this action had of being chosen
    score: float | None  # P(redeem) of the chosen offer
    expected_value: float  # yen
    arm: Literal["treatment", "explore", "none"]
    fallback_reason: str | None = None  # set when scoring failed and the engine sent nothing
    # What the decision log keeps for learning (docs/architecture.md § Measurement, "Decision log"): each
    # candidate's score, expected value (yen) and probability (the last: no coupon), and the
    # feature matrix that was scored.
    scores: tuple[float, ...] = ()
    values: tuple[float, ...] = ()
    probabilities: tuple[float, ...] = ()
    matrix: np.ndarray | None = field(default=None, compare=False)
    model_version: str | None = None  # the uplift version when uplift ranked (else the scorer's)


def holdout_bucket(customer_id: str, campaign_id: str, secret: bytes | str) -> float:
    """A keyed hash of (campaign, customer) mapped to [0, 1): stable, and unguessable without the key."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = keyed_hmac(key).digest(f"{campaign_id}\x1f{customer_id}".encode())
    return int.from_bytes(digest[:8], "big") / 2.0**64


def in_holdout(customer_id: str, campaign_id: str, secret: bytes | str, holdout_pct: float) -> bool:
    """Whether the customer is in the campaign's control group; holdout_pct is a percentage (10 = 10%)."""
    return holdout_bucket(customer_id, campaign_id, secret) < holdout_pct / 100.0


def offer_value(offer: OfferFeatures, margin_rate: float) -> float:
    """Yen one redemption is worth to the retailer: margin on the redeeming basket less the discount."""
    return margin_rate * max(offer.typical_basket, offer.min_basket) - offer.discount_yen


def offer_values(offers: Sequence[OfferFeatures], margin_rate: float) -> np.ndarray:
    """offer_value for each candidate."""
    return np.array([offer_value(o, margin_rate) for o in offers], dtype=np.float64)


def values_from_features(
    matrix: np.ndarray, margin_rate: float, typical_basket: float = DEFAULT_TYPICAL_BASKET
) -> np.ndarray:
    """offer_value recovered from logged feature vectors (depth and minimum are relative to the basket)."""
    m = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    return typical_basket * (margin_rate * np.maximum(1.0, m[:, _MIN_RATIO]) - m[:, _DEPTH])


def uplift_expected_values(
    p_redeem: np.ndarray,
    spend_treated: np.ndarray,
    spend_control: np.ndarray,
    offers: Sequence[OfferFeatures],
    margin_rate: float,
) -> np.ndarray:
    """Incremental profit per candidate: margin on the spend the coupon causes, less the expected discount."""
    discounts = np.array([o.discount_yen for o in offers])
    return margin_rate * (spend_treated - spend_control) - p_redeem * discounts


def _probabilities(ev: list[float], config: PolicyConfig) -> list[float]:
    # Plain floats: for a handful of candidates this is several times faster than numpy.
    n = len(ev)
    if config.mode == "softmax":
        top = max([0.0, *ev])
        weights = [math.exp((e - top) / config.temperature) for e in ev]
        weights.append(math.exp(-top / config.temperature))
        total = sum(weights)
        return [w / total for w in weights]
    best = max(range(n), key=ev.__getitem__) if n else n
    if n == 0 or ev[best] <= 0.0:
        best = n  # nothing beats sending no coupon
    eps = config.epsilon if config.mode == "epsilon_greedy" else 0.0
    probs = [eps / (n + 1)] * (n + 1)
    probs[best] += 1.0 - eps
    return probs


def action_probabilities(expected_values: np.ndarray, config: PolicyConfig) -> np.ndarray:
    """Probability of each action: candidates 0..n-1, then "no coupon" (EV 0) at index n."""
    return np.array(_probabilities(np.asarray(expected_values, dtype=np.float64).tolist(), config))


def choose_action(
    candidates: Sequence[object],
    probabilities: np.ndarray,
    values: np.ndarray,
    config: PolicyConfig,
    rng: np.random.Generator,
    *,
    expected_values: np.ndarray | None = None,
    matrix: np.ndarray | None = None,
) -> Choice:
    """Pick one candidate or none by EV = P(redeem) x value, exploring as configured.
    `matrix`: the scored features, kept with the choice for the decision log."""
    n = len(candidates)
    p = np.asarray(probabilities, dtype=np.float64).tolist()
    ev = (
        np.asarray(values, dtype=np.float64) * p
        if expected_values is None
        else np.asarray(expected_values, dtype=np.float64)
    ).tolist()
    if len(p) != n or len(ev) != n:
        raise ValueError(f"{n} candidates but {len(p)} probabilities and {len(ev)} values")
    probs = _probabilities(ev, config)
    greedy = max(range(n + 1), key=probs.__getitem__)
    # Inverse-CDF draw: the chosen action's probability is exactly probs[action].
    u, cumulative, action = rng.random(), 0.0, -1
    for i, pr in enumerate(probs):
        if pr > 0.0:
            action = i
            cumulative += pr
            if u < cumulative:
                break
    logged_p, logged_ev, logged_probs = tuple(p), tuple(ev), tuple(probs)
    if action == n:
        return Choice(
            None, probs[n], None, 0.0, "none", None, logged_p, logged_ev, logged_probs, matrix
        )
    arm: Literal["treatment", "explore"] = "treatment" if action == greedy else "explore"
    return Choice(
        action,
        probs[action],
        p[action],
        ev[action],
        arm,
        None,
        logged_p,
        logged_ev,
        logged_probs,
        matrix,
    )


def no_coupon(reason: str) -> Choice:
    """The safe fallback decision: nothing sent, chosen with certainty."""
    return Choice(None, 1.0, None, 0.0, "none", fallback_reason=reason)


def decide(
    scorer: Scorer,
    customer: CustomerFeatures,
    context: DecisionContext,
    offers: Sequence[OfferFeatures],
    config: PolicyConfig,
    rng: np.random.Generator,
    uplift_scorer: UpliftScoring | None = None,
    *,
    message_costs: Sequence[float] | None = None,
) -> Choice:
    """Features -> one batched scoring -> choice. Bad features never raise: they mean no coupon.

    `message_costs`: yen per candidate when it would be pushed (candidates.message_costs).
    """
    if not offers:
        return Choice(None, 1.0, None, 0.0, "none")
    try:
        matrix = feature_matrix(customer, context, offers)
        p, treated, control = score_rows(scorer, matrix, config, uplift_scorer)
        choice = choose_scored(
            matrix, p, treated, control, offers, config, rng, message_costs=message_costs
        )
        if treated is not None and uplift_scorer is not None:
            return replace(choice, model_version=uplift_scorer.model_version)
        return choice
    except InvalidFeatures as exc:
        log.error("invalid features, sending no coupon: %s (model %s)", exc, scorer.model_version)
        return no_coupon(f"invalid_features: {exc}")
    except Exception as exc:  # a scoring failure must cost one coupon, not the engine
        log.exception("scoring failed, sending no coupon (model %s)", scorer.model_version)
        return no_coupon(f"scoring_error: {type(exc).__name__}: {exc}")


def ranks_by_uplift(config: PolicyConfig, uplift_scorer: UpliftScoring | None) -> bool:
    """Uplift ranking needs both models; without an uplift scorer the propensity EV decides."""
    return config.uplift and uplift_scorer is not None


def score_rows(
    scorer: Scorer,
    matrix: np.ndarray,
    config: PolicyConfig,
    uplift_scorer: UpliftScoring | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """P(redeem) per row and, when uplift ranks, the spend if sent and if not: one call per
    model (a decision batch stacks the rows of all its requests, decisions/scoring.py)."""
    p = scorer.score(matrix)
    if uplift_scorer is not None and ranks_by_uplift(config, uplift_scorer):
        treated, control = uplift_scorer.score(matrix)
        return p, treated, control
    return p, None, None


def choose_scored(
    matrix: np.ndarray,
    p: np.ndarray,
    treated: np.ndarray | None,
    control: np.ndarray | None,
    offers: Sequence[OfferFeatures],
    config: PolicyConfig,
    rng: np.random.Generator,
    *,
    message_costs: Sequence[float] | None = None,
) -> Choice:
    """The choice among one request's scored candidates (score_rows' output for its rows).

    With `message_costs` (a push), each candidate's EV is less its message cost.
    """
    values = offer_values(offers, config.margin_rate)
    if treated is not None and control is not None:
        ev = uplift_expected_values(p, treated, control, offers, config.margin_rate)
    elif message_costs is not None:
        ev = values * np.asarray(p, dtype=np.float64)
    else:
        return choose_action(offers, p, values, config, rng, matrix=matrix)
    if message_costs is not None:
        ev = ev - np.asarray(message_costs, dtype=np.float64)
    zeros = np.zeros(len(offers))
    return choose_action(offers, p, zeros, config, rng, expected_values=ev, matrix=matrix)
