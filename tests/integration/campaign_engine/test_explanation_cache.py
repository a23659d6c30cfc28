"""The explanation cache on real Redis: one process computes, another reads it; keyed by
decision and model version, with a TTL; Redis down falls back to the process's own cache."""

from __future__ import annotations

import uuid

import pytest
import redis

from services.campaign_engine.insights.explain import Contributions, FeatureEffect
from services.campaign_engine.insights.explain_cache import (
    DEFAULT_TTL_S,
    SharedExplanationCache,
    cache_key,
)
from shared.redis_client import make_redis

FOUND = Contributions(
    row=1,
    effects=[FeatureEffect("frequency_per_week", 5.5, 1.2345), FeatureEffect("linked", 1.0, -0.25)],
    score=0.31,
    reference_score=0.12,
    reference="logged_decisions",
    reference_rows=64,
    notes=[],
    category_code=3.0,
    unit="log_odds",
)


@pytest.fixture
def client(real_services: dict[str, str]) -> redis.Redis:
    return make_redis(real_services["REDIS_URL"])


def test_one_process_computes_another_reads(client: redis.Redis) -> None:
    decision = str(uuid.uuid4())
    first, second = SharedExplanationCache(lambda: client), SharedExplanationCache(lambda: client)
    assert second.get(decision, "prop-a") is None
    first.put(decision, "prop-a", FOUND)
    assert second.get(decision, "prop-a") == FOUND  # read from Redis, not its own memory
    assert second.get(decision, "upl-b") is None  # another version explains it afresh
    ttl = client.ttl(cache_key(decision, "prop-a"))
    assert 0 < ttl <= DEFAULT_TTL_S


def test_redis_down_falls_back_to_the_process_cache() -> None:
    down = make_redis("redis://127.0.0.1:1/0", timeout_s=0.2)  # nothing listens on port 1
    cache = SharedExplanationCache(lambda: down)
    decision = str(uuid.uuid4())
    assert cache.get(decision, "prop-a") is None
    cache.put(decision, "prop-a", FOUND)  # does not raise
    assert cache.get(decision, "prop-a") == FOUND
