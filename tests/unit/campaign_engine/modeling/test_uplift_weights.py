"""The policy-corrected option of the uplift rows: 1 / logged probability, mean 1 per group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from migrations.metadata import target_metadata
from services.campaign_engine.modeling.from_logs import UPLIFT_IPW, ipw_weights, uplift_rows
from services.campaign_engine.modeling.outcomes import logged_outcomes
from services.campaign_engine.modeling.simulated_log import simulated_log, write_log
from shared.db import make_engine

START = datetime(2026, 10, 1, tzinfo=UTC)


def test_weighted_rows_weigh_each_group_by_its_inverse_propensity() -> None:
    db = make_engine("sqlite://")
    target_metadata.create_all(db)
    with db.begin() as conn:
        write_log(conn, simulated_log(1500, seed=8, start=START))
        logged = logged_outcomes(
            conn, since=START, until=START + timedelta(days=14), now=START + timedelta(days=30)
        )
    db.dispose()
    plain, weighted = uplift_rows(logged, weighted=False), uplift_rows(logged, weighted=True)
    assert plain.weights is None and weighted.weights is not None
    assert (uplift_rows(logged).weights is None) == (not UPLIFT_IPW)
    keep = logged.treated | np.isin(logged.reason.astype(str), ("holdout", "policy_chose_none"))
    prop = logged.propensity[keep]
    for group in (weighted.treated, ~weighted.treated):
        assert np.isclose(weighted.weights[group].mean(), 1.0)
        assert np.allclose(weighted.weights[group], ipw_weights(prop[group]))
    explored = weighted.treated & (prop < 0.5)
    assert (
        explored.any()
        and weighted.weights[explored].min()
        > weighted.weights[weighted.treated & (prop > 0.5)].max()
    )
