"""Rate limits (docs/interfaces.md § Rate limits): token buckets (`buckets`) and the named
buckets with their sizes (`limits`)."""

from shared.ratelimit.buckets import (
    LEASE_S,
    REDIS_TIMEOUT_S,
    RETRY_REDIS_AFTER_S,
    TAKE_SCRIPT,
    Bucket,
    RateLimiter,
    Verdict,
)
from shared.ratelimit.limits import DEFAULTS, Limits, RateLimitConfigError, rate_limiter

__all__ = [
    "DEFAULTS",
    "LEASE_S",
    "REDIS_TIMEOUT_S",
    "RETRY_REDIS_AFTER_S",
    "TAKE_SCRIPT",
    "Bucket",
    "Limits",
    "RateLimitConfigError",
    "RateLimiter",
    "Verdict",
    "rate_limiter",
]
