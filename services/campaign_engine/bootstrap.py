"""Wiring: one `Engine` holds the dependencies every entry point (app, worker, bench) uses.

Nothing connects at import time. The database engine is built here from settings (or
handed in by a test). Redis and what lives there (budget reservations, customer
features, once-markers) and the models are built on first use: the HTTP app needs none
of them, and the worker builds them before it takes work (worker.prepare).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import redis
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.orm import Session, sessionmaker

from services.campaign_engine.budget.reservation_store import ReservationStore
from services.campaign_engine.budget.reservations import RedisReservations
from services.campaign_engine.decisions.decide import (
    DecidedBatch,
    decide_batch,
    decide_within,
    prepare_batch,
)
from services.campaign_engine.decisions.inputs import ActiveCampaigns
from services.campaign_engine.decisions.policy import PolicyConfig, Scorer, UpliftScoring
from services.campaign_engine.decisions.record import StoredDecision
from services.campaign_engine.features.markers import Markers, RedisMarkers
from services.campaign_engine.features.store import CustomerFeatureStore, FeatureStore
from shared.config import Settings
from shared.coupons import coupon_key
from shared.crypto import derive_key
from shared.db import make_engine, make_session_factory, utcnow
from shared.events import Envelope, OfferRequested
from shared.ratelimit import Bucket, Limits, RateLimiter

log = structlog.get_logger(__name__)

SERVICE = "campaign_engine"
FEATURE_PREFIX = "ce:cf:"


@dataclass(frozen=True)
class OnRedis:
    """What campaign_engine keeps in Redis: budget counters, customer features, once-markers."""

    client: redis.Redis
    reservations: ReservationStore
    features: FeatureStore
    markers: Markers

    @classmethod
    def using(cls, client: redis.Redis) -> OnRedis:
        """The Redis-backed adapters, sharing one client."""
        return cls(
            client,
            RedisReservations(client),
            CustomerFeatureStore(client, prefix=FEATURE_PREFIX),
            RedisMarkers(client),
        )

    @classmethod
    def from_url(cls, redis_url: str | None) -> OnRedis:
        """The adapters on a new client of `redis_url`; RuntimeError when there is none."""
        if not redis_url:
            raise RuntimeError("REDIS_URL is not set: campaign_engine needs Redis for budgets")
        return cls.using(engine_redis(redis_url))


@dataclass
class Engine:
    """campaign_engine's dependencies; the Redis-backed ones and the models load on first use."""

    settings: Settings
    db: DbEngine
    sessions: sessionmaker[Session]
    policy: PolicyConfig
    coupon_key: bytes
    holdout_key: bytes
    clock: Callable[[], datetime] = field(default=utcnow)
    campaigns: ActiveCampaigns = field(default_factory=ActiveCampaigns)
    _on_redis: OnRedis | None = None
    _scorer: Scorer | None = None
    _uplift_scorer: UpliftScoring | None = None
    # TENIN_RATE_LIMIT_ISSUANCE, read when the engine is built (docs/interfaces.md § Rate limits).
    issuance_bucket: Bucket = field(default_factory=lambda: Limits.from_env()["issuance"])
    _issuance: RateLimiter | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rngs: threading.local = field(default_factory=threading.local, repr=False)

    def on_redis(self) -> OnRedis:
        """The Redis-backed adapters, built on first use; RuntimeError without REDIS_URL."""
        if self._on_redis is None:
            with self._lock:
                self._on_redis = self._on_redis or OnRedis.from_url(self.settings.redis_url)
        return self._on_redis

    @property
    def redis(self) -> redis.Redis:
        return self.on_redis().client

    @property
    def reservations(self) -> ReservationStore:
        return self.on_redis().reservations

    @property
    def features(self) -> FeatureStore:
        return self.on_redis().features

    @property
    def markers(self) -> Markers:
        return self.on_redis().markers

    @property
    def scorer(self) -> Scorer:
        """The propensity scorer, loaded on first use (the HTTP app never needs it)."""
        if self._scorer is None:
            with self._lock:
                self._scorer = self._scorer or load_scorer(self.settings.model_dir)
        return self._scorer

    @property
    def uplift_scorer(self) -> UpliftScoring | None:
        """The T-learner pair, when TENIN_POLICY=uplift (coupons go to persuadables)."""
        if not self.policy.uplift:
            return None
        if self._uplift_scorer is None:
            if not (self.settings.uplift_dir / "CURRENT").exists():
                return None  # none promoted yet: the propensity EV ranks until one is
            with self._lock:
                self._uplift_scorer = self._uplift_scorer or load_uplift_scorer(
                    self.settings.uplift_dir
                )
        return self._uplift_scorer

    def may_issue(self, customer_ids: Sequence[str]) -> list[bool]:
        """The per-customer issuance bucket (docs/interfaces.md § Rate limits) of each
        customer, on the engine's Redis in one round trip; it fails closed, so Redis down
        means no coupon."""
        if self._issuance is None:
            self._issuance = RateLimiter(self.redis, self.settings.topic_namespace)
        return [v.allowed for v in self._issuance.take_each(self.issuance_bucket, customer_ids)]

    def decide(self, envelope: Envelope) -> StoredDecision | None:
        """One offer request (a batch of one) with this engine's dependencies."""
        return self.decide_batch([envelope])[0]

    def decide_batch(self, envelopes: Sequence[Envelope]) -> list[StoredDecision | None]:
        """decide_batch with this engine's dependencies."""
        return decide_batch(envelopes, sessions=self.sessions, **self._deciding())

    def prepare_batch(
        self, envelopes: Sequence[Envelope]
    ) -> Callable[[], list[StoredDecision | None]]:
        """prepare_batch with this engine's dependencies (the decision consumer's handler:
        it writes a full poll while it prepares the next, shared/consumer_pipelined.py)."""
        return prepare_batch(envelopes, sessions=self.sessions, **self._deciding())

    def decide_within(self, session: Session, requests: Sequence[OfferRequested]) -> DecidedBatch:
        """decide_within with this engine's dependencies (the drop runner decides a page of
        followers in the page's transaction)."""
        return decide_within(session, requests, **self._deciding())

    def _thread_rng(self) -> np.random.Generator:
        """This thread's random generator for the policy's draws, seeded from the OS once per
        thread and process (not once per batch: seeding reads os.urandom, which lets go of
        the GIL; a forked child seeds its own, so it never repeats its parent's draws)."""
        pid, rng = getattr(self._rngs, "seeded", (None, None))
        if rng is None or pid != os.getpid():
            rng = np.random.default_rng()
            self._rngs.seeded = (os.getpid(), rng)
        return rng

    def _deciding(self) -> dict[str, Any]:
        """decide_within's keyword arguments: this engine's dependencies."""
        return {
            "reservations": self.reservations,
            "features": self.features,
            "scorer": self.scorer,
            "policy": self.policy,
            "coupon_key": self.coupon_key,
            "holdout_key": self.holdout_key,
            "clock": self.clock,
            "rng": self._thread_rng(),
            "campaigns": self.campaigns,
            "uplift_scorer": self.uplift_scorer,
            "issuance": self.may_issue,
        }


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


def load_scorer(model_dir: Path) -> Scorer:
    """The propensity model's CURRENT version, loaded (its ONNX session built) now."""
    from shared.model.scoring import PropensityScorer

    scorer = PropensityScorer(model_dir)
    log.info("model_loaded", model_version=scorer.model_version)
    return scorer


def load_uplift_scorer(uplift_dir: Path | None = None) -> UpliftScoring:
    """The uplift pair's CURRENT version in TENIN_UPLIFT_DIR (the shipped one by default)."""
    from shared.config import DEFAULT_UPLIFT_DIR
    from shared.model.scoring import UpliftScorer

    scorer = UpliftScorer(uplift_dir or DEFAULT_UPLIFT_DIR)
    log.info("uplift_model_loaded", model_version=scorer.model_version)
    return scorer


def holdout_key(secret_key: str) -> bytes:
    """The key of the holdout hash (docs/architecture.md § Decisions), from TENIN_SECRET_KEY."""
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
    pre_ping: bool = True,
) -> Engine:
    """Build the engine's dependencies from settings (the environment when none are given).

    A test may hand in the database engine, a Redis client, a scorer, a policy or a clock.
    Worker loops pass `pre_ping=False` (docs/architecture.md § Decisions: no round trip per
    checkout on the hot path; a dropped connection fails the batch, which is retried).
    """
    settings = (settings or Settings.from_env(service=SERVICE)).with_service(SERVICE)
    db = db or make_engine(settings.effective_database_url, pool_size=pool_size, pre_ping=pre_ping)
    return Engine(
        settings=settings,
        db=db,
        sessions=make_session_factory(db),
        policy=policy
        or PolicyConfig(
            epsilon=settings.policy_epsilon,
            uplift=settings.policy_uplift,
            pacing_slack=settings.pacing_slack,
        ),
        coupon_key=coupon_key(settings.secret_key),
        holdout_key=holdout_key(settings.pseudonym_key),  # stable across key rotations
        clock=clock or utcnow,
        _on_redis=OnRedis.using(redis_client) if redis_client is not None else None,
        _scorer=scorer,
    )
