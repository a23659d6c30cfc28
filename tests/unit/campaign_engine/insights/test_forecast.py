"""The forecast's arithmetic: audience split, budget caps, intervals, and honesty about its basis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from services.campaign_engine.campaigns.commands import create_campaign
from services.campaign_engine.campaigns.schemas import CampaignIn
from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.insights.forecast import Forecast, _capped_daily, forecast
from services.campaign_engine.insights.forecast_data import (
    AudienceRows,
    LoggedEffect,
    RequestRate,
    SimilarHistory,
)
from services.campaign_engine.models import Campaign
from shared.db import unit_of_work
from shared.model.features import (
    FEATURE_NAMES,
    CustomerFeatures,
    DecisionContext,
    OfferFeatures,
    feature_matrix,
)
from tests.unit.campaign_engine.fakes import NOW, ConstantScorer, campaign_body

NO_RATE = RequestRate(0, 0.0)
NO_HISTORY = SimilarHistory(0, 0, 0, 0.0)
RATE = RequestRate(requests=28_000, customer_days=1000 * 28.0)  # one request a day each
HISTORY = SimilarHistory(campaigns=3, coupons=5_000, redeemed=1_000, predicted=1_000.0)


def _campaign(sessions: Callable[[], Session], **over: Any) -> Campaign:
    with unit_of_work(sessions) as session:
        return create_campaign(session, CampaignIn.model_validate(campaign_body(NOW, **over)))


LOGGED_OFFER = OfferFeatures("amount", 120, "onigiri")  # unlike the campaign's 50 yen off
LOGGED_DEPTH = LOGGED_OFFER.discount_yen / LOGGED_OFFER.typical_basket


def _audience(n: int) -> AudienceRows:
    customer = CustomerFeatures(frequency_per_week=3.0, monetary_avg=800.0)
    row = feature_matrix(customer, DecisionContext(12, 2), [LOGGED_OFFER])
    return AudienceRows(np.repeat(row.astype(np.float64), n, axis=0), n, [set()] * n)


class ConstantUplift:
    """The uplift pair's stand-in: every row would spend `yen` more with a coupon."""

    def __init__(self, yen: float) -> None:
        self.yen = yen

    def uplift(self, matrix: np.ndarray) -> np.ndarray:
        return np.full(len(matrix), self.yen)


def _effect(difference: float, treated: int = 500, holdout: int = 500) -> LoggedEffect:
    rows = _audience(treated).base
    return LoggedEffect(treated, holdout, difference, 5.0, rows)


def _run(
    campaign: Campaign,
    rate: RequestRate,
    history: SimilarHistory,
    n: int = 1000,
    **over: Any,
) -> Forecast:
    policy = PolicyConfig(mode="greedy")
    over.setdefault("effect", _effect(40.0))
    return forecast(campaign, _audience(n), rate, history, ConstantScorer(0.2), policy, NOW, **over)


def _width(result: Forecast, name: str) -> float:
    estimate, low, high = result.figures[name]
    return (high - low) / max(estimate, 1e-9)


def test_a_draft_with_no_history_says_so_and_keeps_its_intervals_wide(sessions: Any) -> None:
    campaign = _campaign(sessions)
    bare = _run(campaign, NO_RATE, NO_HISTORY, effect=None, uplift=ConstantUplift(30.0))
    backed = _run(campaign, RATE, HISTORY)
    assert (bare.confidence, bare.basis) == ("low", "model")
    assert any("no logged requests" in note for note in bare.notes)
    assert any("no similar campaign history" in note for note in bare.notes)
    assert (backed.confidence, backed.basis) == ("high", "both")
    assert _width(bare, "redemptions") > 3 * _width(backed, "redemptions")
    assert any("rests on the model alone" in note for note in bare.notes)
    assert _width(bare, "incremental_revenue") > 3 * _width(backed, "incremental_revenue")


def test_incremental_revenue_follows_the_holdout_comparison_in_the_logs(sessions: Any) -> None:
    campaign = _campaign(sessions, budget={"max_coupons": 10**6})
    measured = _run(campaign, RATE, HISTORY, effect=_effect(40.0))
    coupons = measured.figures["coupons"][0]
    # No model: the logs' 40 yen per coupon, as measured.
    assert abs(measured.figures["incremental_revenue"][0] / coupons - 40.0) < 1.0
    assert any("measured on 500 treated and 500 holdout" in n for n in measured.notes)
    # A model that says 10 yen where the logs measured 40 for the same coupons is scaled up
    # to the logs; this campaign's coupons, which the model rates at 30, then bring 120.
    scaled = _run(campaign, RATE, HISTORY, effect=_effect(40.0), uplift=ScaledUplift())
    assert abs(scaled.figures["incremental_revenue"][0] / coupons - 120.0) < 3.0
    # Too few holdout decisions: the logs are not used for the effect.
    thin = _run(campaign, RATE, HISTORY, effect=_effect(40.0, holdout=5))
    assert thin.figures["incremental_revenue"][0] == 0.0
    assert any("no uplift model and no holdout comparison" in n for n in thin.notes)


class ScaledUplift:
    """10 yen for the logged coupons' rows (120 yen off), 30 for this campaign's (50 yen off)."""

    def uplift(self, matrix: np.ndarray) -> np.ndarray:
        depth = matrix[:, FEATURE_NAMES.index("discount_depth")]
        return np.where(np.isclose(depth, LOGGED_DEPTH), 10.0, 30.0)


def test_every_interval_holds_its_estimate(sessions: Any) -> None:
    result = _run(_campaign(sessions), RATE, HISTORY)
    for name, (estimate, low, high) in result.figures.items():
        assert low <= estimate <= high, name


def test_the_holdout_share_gets_no_coupons(sessions: Any) -> None:
    campaign = _campaign(sessions, holdout_pct=20, budget={"max_coupons": 10**6})
    result = _run(campaign, RATE, HISTORY)
    assert (result.eligible, result.treated, result.holdout) == (1000, 800, 200)
    # 800 treated customers asking once a day for 30 days, no caps: ~24,000 coupons
    estimate, low, high = result.figures["coupons"]
    assert 22_000 < estimate < 26_000 and low < estimate < high


def test_the_budget_bounds_coupons_and_the_burn(sessions: Any) -> None:
    campaign = _campaign(sessions, budget={"max_coupons": 500, "max_discount_total": 2_000})
    result = _run(campaign, RATE, HISTORY)
    assert result.figures["coupons"][2] <= 500
    assert result.figures["discount_cost"][2] <= 2_000
    assert result.burn[-1]["budget_used_pct"] == 100.0
    assert len(result.burn) == 30
    cumulative = [point["coupons"] for point in result.burn]
    assert cumulative == sorted(cumulative)


def test_a_daily_cap_limits_each_customer(sessions: Any) -> None:
    capped = _campaign(sessions, caps={"per_customer_per_day": 1, "per_customer_total": 2})
    result = _run(capped, RATE, HISTORY)
    assert result.figures["coupons"][2] <= 2 * 1000 * 1.1  # two each at most, plus counting noise


def test_daily_caps_from_one_to_the_money_bound_stay_exact_and_cheap() -> None:
    """A cap of 10**12 per day (the API's bound) once tried to allocate 7 TiB (schemathesis)."""
    rate = np.array([0.0, 0.1, 1.0, 3.0])
    assert np.allclose(_capped_daily(rate, 1), 1 - np.exp(-rate))
    assert np.allclose(_capped_daily(rate, 2), [0.0, 0.09984, 0.89636, 1.75106], atol=1e-5)
    assert np.allclose(_capped_daily(rate, 10**12), rate)
