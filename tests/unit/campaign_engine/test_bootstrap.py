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
