"""The named buckets tenin uses and their sizes from the environment (docs/interfaces.md
§ Rate limits), and the limiter a service builds from its Redis URL."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from shared.ratelimit.buckets import REDIS_TIMEOUT_S, Bucket, RateLimiter

# name -> (rate per second, burst, fail open); each overridable by TENIN_RATE_LIMIT_<NAME>
# = "<rate>/<burst>" (docs/interfaces.md § Rate limits).
DEFAULTS: dict[str, tuple[float, int, bool]] = {
    "key_marketer": (20.0, 100, True),
    "key_pos": (50.0, 200, True),
    "key_members": (10.0, 50, True),
    "key_admin": (50.0, 200, True),
    "store": (50.0, 200, True),
    "line_user": (1.0, 20, True),
    "link": (1 / 1200, 5, False),
    "issuance": (1.0, 10, False),
}


class RateLimitConfigError(ValueError):
    """A TENIN_RATE_LIMIT_* variable tenin cannot use."""


@dataclass(frozen=True)
class Limits:
    """Every bucket tenin uses, by name: `key_<role>` per API key, `store` per store,
    `line_user` per messaging user's messages, `link` per customer's card-link attempts,
    `issuance` per customer's coupons (docs/interfaces.md § Rate limits)."""

    buckets: dict[str, Bucket]

    def __getitem__(self, name: str) -> Bucket:
        return self.buckets[name]

    def for_role(self, role: str) -> Bucket:
        """The per-key bucket of a role."""
        return self.buckets[f"key_{role}"]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        """The defaults, each replaced by its TENIN_RATE_LIMIT_<NAME> when set."""
        env = os.environ if env is None else env
        buckets = {}
        for name, (rate, burst, fail_open) in DEFAULTS.items():
            variable = f"TENIN_RATE_LIMIT_{name.upper()}"
            raw = env.get(variable, "").strip()
            if raw:
                rate, burst = _rate_and_burst(variable, raw)
            buckets[name] = Bucket(name, rate, burst, fail_open)
        return cls(buckets)


def _rate_and_burst(variable: str, raw: str) -> tuple[float, int]:
    try:
        rate_text, burst_text = raw.split("/")
        rate, burst = float(rate_text), int(burst_text)
        Bucket(variable, rate, burst, True)
    except ValueError as exc:
        raise RateLimitConfigError(
            f"{variable} must be <rate per second>/<burst>, e.g. 20/100; got {raw!r}"
        ) from exc
    return rate, burst


def rate_limiter(redis_url: str | None, namespace: str) -> RateLimiter:
    """A limiter on its own short-timeout client of `redis_url` (in process without one)."""
    from shared.redis_client import make_redis

    client = make_redis(redis_url, timeout_s=REDIS_TIMEOUT_S) if redis_url else None
    return RateLimiter(client, namespace)
