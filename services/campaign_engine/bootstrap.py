"""Wiring: one `Engine` holds the adapters every entry point (app, worker, bench) uses.

Nothing connects at import time; the database engine, Redis client and scorer are built
here from settings, or handed in by a test.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import redis
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.orm import Session, sessionmaker

from services.campaign_engine.decisions import Scorer, decide_offer
from services.campaign_engine.handlers import apply_update
from services.campaign_engine.lookup import ActiveCampaigns
from services.campaign_engine.policy import PolicyConfig
from services.campaign_engine.reservations import RedisReservations, ReservationStore
from shared.config import Settings
from shared.coupons import coupon_key
from shared.crypto import derive_key
from shared.db import make_engine, make_session_factory, utcnow
from shared.events import Envelope
from services.campaign_engine.features import CustomerFeatureStore

log = structlog.get_logger(__name__)

SERVICE = "campaign_engine"
FEATURE_PREFIX = "ce:cf:"
MARKER_TTL_S = 14 * 86400


class RedisMarkers:
    """Once-markers in Redis for effects that live outside the database."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def seen(self, key: str) -> bool:
        return bool(self._redis.exists(key))

    def mark(self, key: str) -> None:
        self._redis.set(key, 1, ex=MARKER_TTL_S)


@dataclass
class Engine:
    """campaign_engine's dependencies."""

    settings: Settings
    db: DbEngine
    sessions: sessionmaker[Session]
    redis: redis.Redis | None
    reservations: ReservationStore
    features: Any  # CustomerFeatureStore, or a test's in-memory twin
    markers: Any
    policy: PolicyConfig
    coupon_key: bytes
    holdout_key: bytes
    clock: Callable[[], datetime] = field(default=utcnow)
    campaigns: ActiveCampaigns = field(default_factory=ActiveCampaigns)
    _scorer: Scorer | None = None
    _uplift_scorer: Any = None

    @property
    def uplift_scorer(self) -> Any:
        """The T-learner pair, when TENIN_POLICY=uplift (coupons go to persuadables)."""
        if not self.policy.uplift:
            return None
        if self._uplift_scorer is None:
            from shared.config import DEFAULT_UPLIFT_DIR
            from shared.model.scoring import UpliftScorer

            self._uplift_scorer = UpliftScorer(DEFAULT_UPLIFT_DIR)
            log.info("uplift_model_loaded", model_version=self._uplift_scorer.model_version)
        return self._uplift_scorer

    @property
    def scorer(self) -> Scorer:
        """The propensity scorer, loaded on first use (the HTTP app never needs it)."""
        if self._scorer is None:
            from shared.model.scoring import PropensityScorer

            self._scorer = PropensityScorer(self.settings.model_dir)
            log.info("model_loaded", model_version=self._scorer.model_version)
        return self._scorer

    def decide(self, envelope: Envelope) -> Any:
        """decide_offer with this engine's dependencies."""
        return decide_offer(
            envelope,
            sessions=self.sessions,
            reservations=self.reservations,
            features=self.features,
            scorer=self.scorer,
            policy=self.policy,
            coupon_key=self.coupon_key,
            holdout_key=self.holdout_key,
            clock=self.clock,
            rng=np.random.default_rng(),
            campaigns=self.campaigns,
            uplift_scorer=self.uplift_scorer,
        )

    @property
    def update(self) -> Callable[[Envelope], None]:
        """apply_update with this engine's dependencies."""
        return functools.partial(
            apply_update,
            sessions=self.sessions,
            reservations=self.reservations,
            features=self.features,
            markers=self.markers,
        )


def engine_redis(url: str, timeout_s: float = 0.5) -> redis.Redis:
    """A Redis client that gives up fast: with Redis down a decision must still be answered
    promptly (no coupon), not after redis-py's default seconds of retries."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
        decode_responses=True,
    )


def holdout_key(secret_key: str) -> bytes:
    """The key of the holdout hash (DESIGN §4.2), derived from TENIN_SECRET_KEY."""
    return derive_key(secret_key, "tenin/holdout/v1")


def bootstrap(
    settings: Settings | None = None,
    *,
    db: DbEngine | None = None,
    redis_client: redis.Redis | None = None,
    scorer: Scorer | None = None,
    policy: PolicyConfig | None = None,
    clock: Callable[[], datetime] | None = None,
    pool_size: int = 10,
) -> Engine:
    """Build the engine's adapters from settings (the environment when none are given)."""
    settings = (settings or Settings.from_env(service=SERVICE)).with_service(SERVICE)
    db = db or make_engine(settings.effective_database_url, pool_size=pool_size)
    if redis_client is None:
        if not settings.redis_url:
            raise RuntimeError("REDIS_URL is not set: campaign_engine needs Redis for budgets")
        redis_client = engine_redis(settings.redis_url)
    return Engine(
        settings=settings,
        db=db,
        sessions=make_session_factory(db),
        redis=redis_client,
        reservations=RedisReservations(redis_client),
        features=CustomerFeatureStore(redis_client, prefix=FEATURE_PREFIX),
        markers=RedisMarkers(redis_client),
        policy=policy
        or PolicyConfig(epsilon=settings.policy_epsilon, uplift=settings.policy_uplift),
        coupon_key=coupon_key(settings.secret_key),
        holdout_key=holdout_key(settings.secret_key),
        clock=clock or utcnow,
        _scorer=scorer,
    )
