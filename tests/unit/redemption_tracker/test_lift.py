"""Lift maths: Welch's interval against scipy, its coverage, and the share rules."""

from __future__ import annotations

import math

from scipy import stats

from services.redemption_tracker.reports.lift import incremental_share, share_of, welch_lift
from tests.support.redemption_tracker.simulation import simulate


def test_welch_matches_scipy() -> None:
    treated = [1200.0, 800, 0, 450, 3000, 990, 1500]
    holdout = [300.0, 0, 700, 650, 120]
    est = welch_lift(treated, holdout)
    res = stats.ttest_ind(treated, holdout, equal_var=False)
    ci = res.confidence_interval(0.95)
    n = len(treated)
    assert est.treated_customers == 7 and est.holdout_customers == 5
    assert math.isclose(est.difference_per_customer or 0, ci.low + (ci.high - ci.low) / 2)
    assert est.ci95_low == math.floor(ci.low * n) and est.ci95_high == math.ceil(ci.high * n)
    assert est.incremental_revenue == round((sum(treated) / 7 - sum(holdout) / 5) * 7)
    assert math.isclose(est.degrees_of_freedom or 0, float(res.df))


def test_too_little_data_gives_no_interval() -> None:
    assert welch_lift([], [1.0, 2.0]).ci95_low is None
    one = welch_lift([5.0], [1.0, 2.0])
    assert one.incremental_revenue == round(5 - 1.5) and one.ci95_low is None
    flat = welch_lift([5.0, 5.0], [1.0, 1.0])
    assert flat.ci95_low == flat.ci95_high == 8


def test_coverage_over_many_simulated_campaigns() -> None:
    runs = range(5000, 5300)
    hits = 0
    for seed in runs:
        sim = simulate(seed)
        t = [float(sum(c.baskets)) for c in sim.customers if c.treated]
        h = [float(sum(c.baskets)) for c in sim.customers if not c.treated]
        est = welch_lift(t, h)
        assert est.ci95_low is not None and est.ci95_high is not None
        hits += est.ci95_low <= sim.true_incremental <= est.ci95_high
    assert 0.92 <= hits / len(runs) <= 0.98


def test_shares_are_floored_and_never_negative_on_the_incremental_basis() -> None:
    assert share_of(2001, 500) == 100
    assert share_of(-2001, 500) == -100
    assert incremental_share(welch_lift([0.0, 0.0], [100.0, 100.0]), 1000) == 0
    assert incremental_share(welch_lift([300.0, 300.0], [100.0, 100.0]), 1000) == 40
