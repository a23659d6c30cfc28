"""The value of an uplift policy on logged decisions: reward = profit over the spend window.

Profit per decision = margin x everything the customer spent in the window after it, less the
discount redeemed: the treated, the held out and the sent-nothing alike, so a policy is paid
for the spend it causes and charged for the spend it drives away (docs/learning.md § Rewards).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.campaign_engine.decisions.policy import PolicyConfig, action_probabilities
from services.campaign_engine.modeling.evaluate import Target, split


@dataclass(frozen=True)
class SpendLog:
    """Logged decisions with the spend that followed in the window, coupon or not (uplift reward)."""

    X: np.ndarray  # (m, N_FEATURES) candidate feature vectors
    offsets: np.ndarray  # (n + 1,) as in BanditLog
    discounts: np.ndarray  # (m,) yen each candidate gives away when redeemed
    chosen: np.ndarray  # (n,) candidate index, -1 for no coupon
    propensity: np.ndarray  # (n,) logged probability of the chosen action
    spend: np.ndarray  # (n,) yen spent in the window after the decision
    redeemed: np.ndarray  # (n,) bool
    # Per decision, the actions (no coupon last) whose reward is the logged one: see
    # Target.with_known. None where only the logged action's reward is known.
    known: list[np.ndarray | None] | None = None
    given: np.ndarray | None = None  # (n,) yen the redemptions really took off, when joined
    costs: np.ndarray | None = None  # (n,) yen a coupon sent costs as a push (a drop's)
    paid: np.ndarray | None = None  # (n,) yen the logged action paid for its message

    def __len__(self) -> int:
        return len(self.chosen)

    def profit(self, margin_rate: float) -> np.ndarray:
        """Reward per decision: margin on the window's spend less the discount redeemed and
        the message paid for (a push)."""
        paid = self.paid if self.paid is not None else 0.0
        if self.given is not None:
            return margin_rate * self.spend - np.where(self.redeemed, self.given, 0.0) - paid
        given = np.zeros(len(self))
        sent = self.chosen >= 0
        given[sent] = self.discounts[self.offsets[:-1][sent] + self.chosen[sent]]
        return margin_rate * self.spend - np.where(self.redeemed, given, 0.0) - paid


def profit_target(
    log: SpendLog,
    p_hat: np.ndarray,
    spend_treated: np.ndarray,
    spend_control: np.ndarray,
    config: PolicyConfig,
) -> Target:
    """An uplift policy on a SpendLog (reward: SpendLog.profit, yen per decision).

    The direct model: sending offer a earns margin x spend_treated(a) - P(redeem a) x discount(a)
    (less the message, for a push);
    sending nothing earns margin x spend_control (averaged over the request's candidates). The
    policy ranks offers by the difference, as decisions/policy.py uplift_expected_values does.
    Where the log knows an action's reward without taking it (`SpendLog.known`: a held-out
    customer gets no coupon of that campaign whatever the policy picks), that reward is the
    direct model: exact, and the paired difference of two policies there is 0, not noise.
    """
    m = config.margin_rate
    q_sent = m * spend_treated - p_hat * log.discounts
    costs = log.costs if log.costs is not None else np.zeros(len(log))
    q_hat, probs = [], []
    for q_offer, c, cost in zip(
        split(q_sent, log.offsets), split(m * spend_control, log.offsets), costs, strict=True
    ):
        q = q_offer - cost  # a push pays for its message (decisions/policy.py choose_scored)
        q_none = float(np.mean(c))
        q_hat.append(np.append(q, q_none))
        probs.append(action_probabilities(q - q_none, config))
    target = Target(probs, q_hat)
    return target if log.known is None else target.with_known(log.known, log.profit(m))
