"""Off-policy values charge a push its message, as the live policy does (decisions/policy.py
choose_scored): a drop's coupon is worth its expected redemption value less the campaign's
`message_cost`, and a policy that would push where that is negative is valued so."""

from __future__ import annotations

import numpy as np

from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.modeling.evaluate import BanditLog, off_policy, propensity_target
from services.campaign_engine.modeling.profit_value import SpendLog, profit_target
from shared.model.features import N_FEATURES

GREEDY = PolicyConfig(mode="greedy")
X = np.zeros((2, N_FEATURES), dtype=np.float32)  # two decisions of one candidate each
OFFSETS = np.array([0, 1, 2])


def _bandit(costs: np.ndarray | None) -> BanditLog:
    # Decision 0 was a push that went out and was not redeemed: it paid its message.
    reward = np.array([-(costs[0] if costs is not None else 0.0), 0.0])
    return BanditLog(
        X,
        OFFSETS,
        values=np.array([100.0, 100.0]),
        chosen=np.array([0, -1]),
        propensity=np.array([1.0, 1.0]),
        reward=reward,
        costs=costs,
    )


def test_a_push_whose_message_costs_more_than_its_expected_value_is_not_sent() -> None:
    p_hat = np.array([0.05, 0.05])  # EV 5 yen each
    free = propensity_target(_bandit(None), p_hat, GREEDY)
    charged = propensity_target(_bandit(np.array([10.0, 0.0])), p_hat, GREEDY)
    assert [list(p) for p in free.probs] == [[1.0, 0.0], [1.0, 0.0]]
    # The push (decision 0) now sends nothing; the reply (decision 1, free) still sends.
    assert [list(p) for p in charged.probs] == [[0.0, 1.0], [1.0, 0.0]]
    assert list(charged.q_hat[0]) == [-5.0, 0.0] and list(charged.q_hat[1]) == [5.0, 0.0]


def test_the_logged_push_is_valued_net_of_its_message() -> None:
    log = _bandit(np.array([10.0, 0.0]))
    target = propensity_target(log, np.array([0.05, 0.05]), GREEDY)
    values = off_policy(target, log.chosen, log.propensity, log.reward)
    assert values["logging_policy"].value == -5.0  # (-10 + 0) / 2
    # The target sends nothing for the push (0, exactly what sending nothing earns) and the
    # reply's coupon (its direct estimate, 5 yen: decision 1's logged action differs).
    assert values["doubly_robust"].value == 2.5


def test_an_uplift_policy_pays_for_the_message_too() -> None:
    log = SpendLog(
        X,
        OFFSETS,
        discounts=np.array([50.0, 50.0]),
        chosen=np.array([0, 0]),
        propensity=np.array([1.0, 1.0]),
        spend=np.array([1000.0, 1000.0]),
        redeemed=np.array([False, False]),
        costs=np.array([40.0, 0.0]),
        paid=np.array([40.0, 0.0]),
    )
    assert list(log.profit(0.3)) == [260.0, 300.0]  # margin on spend, less the message paid
    treated, control = np.array([1100.0, 1100.0]), np.array([1000.0, 1000.0])
    target = profit_target(log, np.array([0.1, 0.1]), treated, control, GREEDY)
    # Incremental profit 30 - 5 = 25 yen: below a 40-yen message, above a free reply.
    assert [list(p) for p in target.probs] == [[0.0, 1.0], [1.0, 0.0]]
