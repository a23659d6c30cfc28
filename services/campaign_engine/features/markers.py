"""Once-markers for effects outside the database: Redis feature counters (`ce:fx:<event>`).

A handler records its event id in the same transaction as its database effect, but a
Redis counter cannot join that transaction: a marker left after the effect means a
redelivery (after a failed commit) does not count a sale or a redemption twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import redis

MARKER_TTL_S = 14 * 86400


class Markers(Protocol):
    """Once-markers: RedisMarkers, or a test's in-memory set."""

    def seen(self, key: str) -> bool: ...

    def mark(self, key: str) -> None: ...


class RedisMarkers:
    """Once-markers in Redis, kept two weeks (well past any redelivery)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def seen(self, key: str) -> bool:
        return bool(self._redis.exists(key))

    def mark(self, key: str) -> None:
        self._redis.set(key, 1, ex=MARKER_TTL_S)


def effect_key(event_id: object) -> str:
    """The marker of the Redis effect of one event."""
    return f"ce:fx:{event_id}"


def once(markers: Markers, key: str, effect: Callable[[], None]) -> None:
    """Run `effect` unless a marker says it already ran, then leave the marker."""
    if markers.seen(key):
        return
    effect()
    markers.mark(key)
