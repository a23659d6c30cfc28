"""Client settings that differ between real Kafka and Tansu, kept in one place."""

from __future__ import annotations

import selectors
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BrokerProfile:
    """Client settings that differ between real Kafka and Tansu, kept in one place."""

    name: str
    producer: dict[str, Any]
    consumer: dict[str, Any]
    # Whether the broker answers DescribeConfigs (Tansu drops the connection instead).
    describes_topic_configs: bool = True


class QuietMissSelector(selectors.DefaultSelector):
    """The default selector, whose `get_key` of an unregistered socket raises a bare
    KeyError. kafka-python's network loop asks for the key before every wait on a socket
    and registers it on the KeyError; the standard message is built from the socket's
    repr (two system calls, ~15 µs a miss). Without it, a producer cost 44.5 µs of CPU a
    record against 43.6 (docs/architecture.md § Hot paths). It reads the standard selectors' own lookup and table (private,
    unchanged since Python 3.4; tests/unit/shared/test_quiet_miss_selector.py holds them to it)."""

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        fd: int = self._fileobj_lookup(fileobj)  # type: ignore[attr-defined]
        keys: dict[int, selectors.SelectorKey] = self._fd_to_key  # type: ignore[attr-defined]
        try:
            return keys[fd]
        except KeyError:
            raise KeyError(fd) from None


# Both clients' network loops (a producer's sender thread, a consumer's poll).
_NETWORK: dict[str, Any] = {"selector": QuietMissSelector}

_PRODUCER_COMMON: dict[str, Any] = {
    **_NETWORK,
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
        **_NETWORK,
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
        **_NETWORK,
        "metrics_enabled": False,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_interval_ms": 5_000,
        "request_timeout_ms": 10_000,
    },
    describes_topic_configs=False,
)

PROFILES = {p.name: p for p in (KAFKA_PROFILE, TANSU_PROFILE)}

# A bulk consumer's fetch (Broker.consumer(..., bulk=True)): the broker answers once it has
# 1 MiB for it or 200 ms have passed, instead of at the first record. Each fetch round
# trip cost kafka-python ~1 ms of CPU (rebuilding the fetch over every partition of the
# group's topics), paid per record by groups that read one record a round of chat.
# Only for groups whose state no customer's next message reads (docs/architecture.md
# § Hot paths).
BULK_FETCH: dict[str, Any] = {"fetch_max_wait_ms": 200, "fetch_min_bytes": 1 << 20}
