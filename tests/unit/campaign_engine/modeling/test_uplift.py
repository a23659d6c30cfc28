"""The uplift (T-learner) option: coupons to persuadables, not sure things, and what that earns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.campaign_engine.modeling.dataset import SimWorld, simulated_uplift_rows
from services.campaign_engine.modeling.train import TrainParams
from services.campaign_engine.modeling.uplift import compare_policies, format_table, train_uplift
from shared.config import DEFAULT_MODEL_DIR, DEFAULT_UPLIFT_DIR
from shared.model.features import N_FEATURES
from shared.model.scoring import (
    PropensityScorer,
    UpliftScorer,
    open_scorer,
)


@pytest.fixture(scope="module")
def world() -> SimWorld:
    return SimWorld.create(3000, seed=321)  # not the training population


@pytest.fixture(scope="module")
def propensity() -> PropensityScorer:
    return PropensityScorer(DEFAULT_MODEL_DIR)


def test_randomised_rows_show_the_coupon_effect() -> None:
    rows = simulated_uplift_rows(8000, seed=4)
    assert rows.X.shape == (8000, N_FEATURES) and rows.X.dtype == np.float32
    assert 0.4 < rows.treated.mean() < 0.6
    assert rows.redeemed[~rows.treated].sum() == 0  # the held out cannot redeem
    assert 0.02 < rows.redeemed[rows.treated].mean() < 0.10
    assert 500 < rows.spend.mean() < 3000


def test_a_small_t_learner_trains_exports_and_loads(tmp_path: Path) -> None:
    rows = simulated_uplift_rows(24_000, seed=5)
    card = train_uplift(
        rows,
        tmp_path,
        TrainParams(n_estimators=40, num_leaves=7, min_child_samples=200, learning_rate=0.1),
        seed=5,
    )
    assert card["kind"] == "uplift" and card["max_parity_gap"] <= 1e-5
    assert card["treated_rows"] + card["control_rows"] == card["training_rows"]
    scorer = open_scorer(tmp_path)
    assert isinstance(scorer, UpliftScorer) and scorer.model_version == card["version"]
    treated, control = scorer.score(rows.X[:50])
    assert (treated > 0).all() and (control > 0).all()  # yen spent in the window
    np.testing.assert_allclose(scorer.uplift(rows.X[:50]), treated - control)


def test_uplift_policy_earns_more_than_the_plain_propensity_policy(
    world: SimWorld, propensity: PropensityScorer
) -> None:
    results = {
        r.policy: r
        for r in compare_policies(
            world, propensity, UpliftScorer(DEFAULT_UPLIFT_DIR), 4000, seed=321
        )
    }
    print("\n" + format_table(list(results.values())))
    plain, uplift, oracle = (
        results["propensity (EV)"],
        results["uplift (T-learner)"],
        results["oracle (truth)"],
    )
    assert results["no coupons"].incremental_profit == 0.0 and results["no coupons"].coupons == 0
    assert plain.coupons > 0.95 * 4000  # redemption value always looks positive, so it sends to all
    assert plain.incremental_profit < 0  # ... paying discounts to sure things and annoying the rest
    assert uplift.incremental_profit > plain.incremental_profit + 50_000
    assert uplift.coupons < plain.coupons
    assert oracle.incremental_profit >= max(r.incremental_profit for r in results.values())
    # The plain policy wins on redemptions: the metric it optimises is not the one that pays.
    assert plain.redemptions > uplift.redemptions
