"""What /readyz checks: each dependency a service was given, asked whether it answers."""

from __future__ import annotations

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


def readiness_checks(
    *,
    database: Engine | None = None,
    redis_client: redis.Redis | None = None,
    broker: Callable[[], Broker] | None = None,
) -> dict[str, ReadinessCheck]:
    """One check per dependency given: `database`, `redis`, `kafka` (the broker is built lazily)."""
    checks: dict[str, ReadinessCheck] = {}
    if database is not None:
        engine = database
        checks["database"] = lambda: database_answers(engine)
    if redis_client is not None:
        client = redis_client
        checks["redis"] = lambda: redis_answers(client)
    if broker is not None:
        make_broker = broker
        checks["kafka"] = lambda: broker_answers(make_broker())
    return checks
