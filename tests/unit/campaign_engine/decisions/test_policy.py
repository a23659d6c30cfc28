"""The policy: EV against "no coupon", exploration with exact logged propensities, holdout hashing."""

from __future__ import annotations

import logging
import math
from collections import Counter

import numpy as np
import pytest

from services.campaign_engine.decisions.policy import (
    PolicyConfig,
    action_probabilities,
    choose_action,
    decide,
    holdout_bucket,
    in_holdout,
    offer_value,
    offer_values,
    uplift_expected_values,
    values_from_features,
)
from shared.config import DEFAULT_MODEL_DIR, DEFAULT_UPLIFT_DIR
from shared.model.features import CustomerFeatures, DecisionContext, OfferFeatures, feature_matrix
from shared.model.scoring import PropensityScorer, UpliftScorer

MODES = [
    PolicyConfig(mode="greedy"),
    PolicyConfig(mode="epsilon_greedy", epsilon=0.1),
    PolicyConfig(mode="epsilon_greedy", epsilon=1.0),
    PolicyConfig(mode="softmax", temperature=5.0),
]
OFFERS = [
    OfferFeatures("amount", 50, "onigiri"),
    OfferFeatures("percent", 20, "coffee", min_basket=500),
    OfferFeatures("free_item", 150, "drinks", min_basket=700),
]
CONTEXT = DecisionContext(local_hour=8, weekday=1, intent="coffee", sentiment=0.3)


@pytest.fixture(scope="module")
def scorer() -> PropensityScorer:
    return PropensityScorer(DEFAULT_MODEL_DIR)


@pytest.mark.parametrize("config", MODES, ids=lambda c: f"{c.mode}-{c.epsilon}")
def test_propensities_of_all_actions_sum_to_one(config: PolicyConfig) -> None:
    rng = np.random.default_rng(0)
    for n in (0, 1, 3, 10):
        for _ in range(50):
            probs = action_probabilities(rng.normal(0, 20, n), config)
            assert probs.shape == (n + 1,)
            assert math.isclose(probs.sum(), 1.0, abs_tol=1e-12)
            assert (probs >= 0).all()


@pytest.mark.parametrize("config", MODES[1:], ids=lambda c: f"{c.mode}-{c.epsilon}")
def test_logged_propensity_is_the_probability_the_action_is_chosen(config: PolicyConfig) -> None:
    p = np.array([0.05, 0.2, 0.1])
    v = np.array([100.0, 50.0, -20.0])
    probs = action_probabilities(p * v, config)
    rng = np.random.default_rng(1)
    n = 10_000
    counts: Counter[int] = Counter()
    for _ in range(n):
        choice = choose_action(OFFERS, p, v, config, rng)
        action = 3 if choice.index is None else choice.index
        assert choice.propensity == pytest.approx(probs[action], abs=1e-15)
        counts[action] += 1
    for action, prob in enumerate(probs):
        sd = math.sqrt(n * prob * (1 - prob)) + 1e-9
        assert abs(counts[action] - n * prob) <= 4 * sd + 1, (action, counts[action], n * prob)


def test_greedy_takes_the_best_ev_and_sends_nothing_when_no_offer_pays() -> None:
    rng = np.random.default_rng(2)
    greedy = PolicyConfig(mode="greedy")
    best = choose_action(
        OFFERS, np.array([0.05, 0.2, 0.1]), np.array([100.0, 50.0, 10.0]), greedy, rng
    )
    assert (best.index, best.propensity, best.arm) == (1, 1.0, "treatment")
    assert best.expected_value == pytest.approx(10.0) and best.score == pytest.approx(0.2)
    losing = choose_action(
        OFFERS, np.array([0.3, 0.2, 0.1]), np.array([-5.0, -1.0, 0.0]), greedy, rng
    )
    assert (losing.index, losing.propensity, losing.arm, losing.score) == (None, 1.0, "none", None)


def test_epsilon_greedy_and_softmax_probabilities() -> None:
    ev = np.array([10.0, 4.0, -2.0])
    eps = action_probabilities(ev, PolicyConfig(mode="epsilon_greedy", epsilon=0.2))
    np.testing.assert_allclose(eps, [0.8 + 0.05, 0.05, 0.05, 0.05])
    soft = action_probabilities(ev, PolicyConfig(mode="softmax", temperature=4.0))
    assert soft[0] / soft[1] == pytest.approx(math.exp(6.0 / 4.0))
    assert soft[3] / soft[2] == pytest.approx(math.exp(2.0 / 4.0))  # "no coupon" has EV 0


def test_explore_arm_marks_non_greedy_choices() -> None:
    rng = np.random.default_rng(3)
    config = PolicyConfig(mode="epsilon_greedy", epsilon=1.0)
    arms = {
        choose_action(OFFERS, np.full(3, 0.1), np.array([100.0, 1.0, 1.0]), config, rng).arm
        for _ in range(200)
    }
    assert arms == {"treatment", "explore", "none"}


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        PolicyConfig(mode="thompson")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PolicyConfig(epsilon=1.5)
    with pytest.raises(ValueError):
        PolicyConfig(mode="softmax", temperature=0)


def test_holdout_share_matches_pct_and_is_stable() -> None:
    ids = [f"cust-{i:05d}" for i in range(10_000)]
    for pct in (5.0, 10.0, 30.0):
        held = [in_holdout(c, "camp-1", "s3cret", pct) for c in ids]
        assert abs(sum(held) / len(ids) - pct / 100) < 0.012, pct
        assert held == [in_holdout(c, "camp-1", "s3cret", pct) for c in ids]
    buckets = [holdout_bucket(c, "camp-1", b"s3cret") for c in ids[:2000]]
    assert all(0.0 <= b < 1.0 for b in buckets)
    assert buckets == [
        holdout_bucket(c, "camp-1", "s3cret") for c in ids[:2000]
    ]  # str or bytes key
    other_campaign = [holdout_bucket(c, "camp-2", "s3cret") for c in ids[:2000]]
    other_key = [holdout_bucket(c, "camp-1", "other") for c in ids[:2000]]
    assert abs(np.corrcoef(buckets, other_campaign)[0, 1]) < 0.1
    assert abs(np.corrcoef(buckets, other_key)[0, 1]) < 0.1
    # A bigger holdout contains the smaller one: raising pct never moves a customer out.
    assert all(
        in_holdout(c, "camp-1", "s3cret", 20) for c in ids if in_holdout(c, "camp-1", "s3cret", 10)
    )


def test_retailer_value_of_a_redemption() -> None:
    assert offer_value(OfferFeatures("amount", 50, "onigiri"), 0.3) == pytest.approx(0.3 * 750 - 50)
    # A minimum basket raises the basket the redemption brings.
    assert offer_value(
        OfferFeatures("amount", 100, "bento", min_basket=1000), 0.3
    ) == pytest.approx(200)
    assert offer_value(OfferFeatures("percent", 10, "coffee"), 0.3) == pytest.approx(225 - 75)
    # The logged feature vector carries enough to recover the value for offline evaluation.
    m = feature_matrix(CustomerFeatures(), CONTEXT, OFFERS)
    np.testing.assert_allclose(values_from_features(m, 0.3), offer_values(OFFERS, 0.3), rtol=1e-5)


def test_uplift_ev_is_margin_on_caused_spend_less_expected_discount() -> None:
    ev = uplift_expected_values(
        np.array([0.2, 0.1]), np.array([1500.0, 900.0]), np.array([1000.0, 1000.0]), OFFERS[:2], 0.3
    )
    np.testing.assert_allclose(ev, [0.3 * 500 - 0.2 * 50, 0.3 * -100 - 0.1 * 150])


def test_decide_scores_all_candidates_and_logs_its_propensity(scorer: PropensityScorer) -> None:
    customer = CustomerFeatures(recency_days=1, frequency_per_week=4, monetary_avg=700, linked=True)
    choice = decide(
        scorer, customer, CONTEXT, OFFERS, PolicyConfig(mode="greedy"), np.random.default_rng(4)
    )
    p = scorer.score(feature_matrix(customer, CONTEXT, OFFERS))
    expected = int(np.argmax(p * offer_values(OFFERS, 0.3)))
    assert choice.index == expected and choice.score == pytest.approx(p[expected])
    assert choice.propensity == 1.0 and choice.fallback_reason is None


def test_nan_features_fall_back_to_no_coupon_and_log_the_error(
    scorer: PropensityScorer, caplog: pytest.LogCaptureFixture
) -> None:
    broken = CustomerFeatures(monetary_avg=float("nan"), recency_days=float("inf"))
    with caplog.at_level(logging.ERROR):
        choice = decide(scorer, broken, CONTEXT, OFFERS, PolicyConfig(), np.random.default_rng(5))
    assert (choice.index, choice.propensity, choice.arm) == (None, 1.0, "none")
    assert "invalid_features" in (choice.fallback_reason or "")
    assert "monetary_avg" in caplog.text and scorer.model_version in caplog.text


def test_a_scorer_failure_falls_back_to_no_coupon(caplog: pytest.LogCaptureFixture) -> None:
    class Exploding:
        model_version = "boom-1"

        def score(self, matrix: np.ndarray) -> np.ndarray:
            raise RuntimeError("onnxruntime fell over")

    with caplog.at_level(logging.ERROR):
        choice = decide(
            Exploding(),
            CustomerFeatures(),
            CONTEXT,
            OFFERS,
            PolicyConfig(),  # type: ignore[arg-type]
            np.random.default_rng(6),
        )
    assert choice.index is None and choice.propensity == 1.0
    assert "RuntimeError" in (choice.fallback_reason or "") and "boom-1" in caplog.text


def test_uplift_mode_skips_customers_the_coupon_only_costs(scorer: PropensityScorer) -> None:
    uplift = UpliftScorer(DEFAULT_UPLIFT_DIR)
    config = PolicyConfig(mode="greedy", uplift=True)
    # A sour, complaining customer: contact only annoys them; the uplift policy sends nothing.
    sour = DecisionContext(local_hour=22, weekday=2, intent="complaint", sentiment=-0.9)
    loyal = CustomerFeatures(
        recency_days=0.5,
        frequency_per_week=6,
        monetary_avg=900,
        linked=True,
        coupons_issued=8,
        past_redemption_rate=0.05,
    )
    plain = decide(
        scorer, loyal, sour, OFFERS, PolicyConfig(mode="greedy"), np.random.default_rng(7)
    )
    aware = decide(
        scorer, loyal, sour, OFFERS, config, np.random.default_rng(7), uplift_scorer=uplift
    )
    assert plain.index is not None  # the propensity policy always finds a positive EV
    assert aware.index is None
