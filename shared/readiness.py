"""What /readyz checks: each dependency a service was given, asked whether it answers.

The checks are plain calls; shared/http/probes.py runs them off the request thread, one
at a time each, within a budget (docs/architecture.md § Invariants, readiness). Each check reuses
one client: the service's engine, its Redis client, and one broker built on first use,
whose probe client is kept (`KafkaBroker.ping`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import redis
from sqlalchemy.engine import Engine

from shared.bus import Broker, KafkaBroker
from shared.db import ping as database_answers
from shared.http import ReadinessCheck
from shared.redis_client import ping as redis_answers


def broker_answers(broker: Broker) -> bool:
    """True when a Kafka-protocol broker answers a metadata request (a twin always does)."""
    return bool(broker.ping()) if isinstance(broker, KafkaBroker) else True


def built_once(build: Callable[[], Broker]) -> Callable[[], Broker]:
    """`build`, called on first use only, however many threads ask at once."""
    built: list[Broker] = []
    lock = threading.Lock()

    def get() -> Broker:
        with lock:
            if not built:
                built.append(build())
            return built[0]

    return get


def readiness_checks(
    *,
    database: Engine | None = None,
    redis_client: redis.Redis | None = None,
    broker: Callable[[], Broker] | None = None,
) -> dict[str, ReadinessCheck]:
    """One check per dependency given: `database`, `redis`, `kafka` (the broker is built once,
    lazily, so an app that never gets a probe never connects)."""
    checks: dict[str, ReadinessCheck] = {}
    if database is not None:
        engine = database
        checks["database"] = lambda: database_answers(engine)
    if redis_client is not None:
        client = redis_client
        checks["redis"] = lambda: redis_answers(client)
    if broker is not None:
        the_broker = built_once(broker)
        checks["kafka"] = lambda: broker_answers(the_broker())
    return checks
