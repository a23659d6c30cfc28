"""Client settings that differ between real Kafka and Tansu, kept in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BrokerProfile:
    """Client settings that differ between real Kafka and Tansu, kept in one place."""

    name: str
    producer: dict[str, Any]
    consumer: dict[str, Any]


_PRODUCER_COMMON: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 2,
    "retries": 10,
    "retry_backoff_ms": 200,
    "max_in_flight_requests_per_connection": 5,
    # kafka-python's own metrics registry is never read (the services export their own):
    # recording it cost ~13% of the producer's sender thread per batch.
    "metrics_enabled": False,
}

KAFKA_PROFILE = BrokerProfile(
    name="kafka",
    producer=dict(_PRODUCER_COMMON),
    consumer={
        "metrics_enabled": False,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_interval_ms": 300_000,
        "request_timeout_ms": 305_000,
    },
)

# Tansu only completes a consumer-group join when request_timeout_ms exceeds
# max_poll_interval_ms (the join is held for up to the rebalance timeout).
TANSU_PROFILE = BrokerProfile(
    name="tansu",
    producer=dict(_PRODUCER_COMMON),
    consumer={
        "metrics_enabled": False,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_interval_ms": 5_000,
        "request_timeout_ms": 10_000,
    },
)

PROFILES = {p.name: p for p in (KAFKA_PROFILE, TANSU_PROFILE)}
