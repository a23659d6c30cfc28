"""Wiring: settings reach the engine's policy; nothing connects at bootstrap."""

from __future__ import annotations

import redis

from services.campaign_engine.bootstrap import bootstrap
from shared.config import Settings


def test_the_exploration_rate_comes_from_settings() -> None:
    settings = Settings.from_env({"TENIN_POLICY_EPSILON": "0", "DATABASE_URL": "sqlite://"})
    engine = bootstrap(settings, redis_client=redis.Redis(host="127.0.0.1", port=1))
    assert engine.policy.epsilon == 0.0
    assert (
        bootstrap(
            Settings.from_env({"DATABASE_URL": "sqlite://"}),
            redis_client=redis.Redis(host="127.0.0.1", port=1),
        ).policy.epsilon
        == 0.05
    )


def test_the_uplift_policy_is_chosen_in_settings_and_loads_the_shipped_pair() -> None:
    from shared.model.scoring import UpliftScorer

    plain = bootstrap(
        Settings.from_env({"DATABASE_URL": "sqlite://"}),
        redis_client=redis.Redis(host="127.0.0.1", port=1),
    )
    assert plain.policy.uplift is False and plain.uplift_scorer is None
    uplift = bootstrap(
        Settings.from_env({"TENIN_POLICY": "uplift", "DATABASE_URL": "sqlite://"}),
        redis_client=redis.Redis(host="127.0.0.1", port=1),
    )
    assert uplift.policy.uplift is True
    assert isinstance(uplift.uplift_scorer, UpliftScorer)
