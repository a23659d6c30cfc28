"""The customer feature store: per-customer aggregates in Redis, read at decision time.

The engine's update consumers keep each customer's counters current from sale.recorded,
customer.* and coupon.* events; a decision reads them in one round trip and turns them
into the model's CustomerFeatures (shared.model.features.features_from_aggregates).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import redis

from shared.model.features import (
    CATEGORIES,
    CustomerFeatures,
    features_from_aggregates,
    hour_band,
)

_KNOWN_CATEGORIES = frozenset(CATEGORIES)

# Atomic min/max of the first/last sale times alongside the counters, in one round trip.
_RECORD_SALE = """
local key = KEYS[1]
local ts = tonumber(ARGV[2])
redis.call('HINCRBY', key, 'sale_count', 1)
redis.call('HINCRBYFLOAT', key, 'sale_total', ARGV[1])
local first = redis.call('HGET', key, 'first_sale_ts')
if (not first) or tonumber(first) > ts then redis.call('HSET', key, 'first_sale_ts', ARGV[2]) end
local last = redis.call('HGET', key, 'last_sale_ts')
if (not last) or tonumber(last) < ts then redis.call('HSET', key, 'last_sale_ts', ARGV[2]) end
redis.call('HINCRBY', key, ARGV[3], 1)
for i = 4, #ARGV do redis.call('HINCRBY', key, ARGV[i], 1) end
return 1
"""

# HGETALL packed into one JSON string: redis-py parses a 40-element array reply in Python,
# which costs more CPU per decision than the model; a single bulk string is parsed in C.
_READ = "return cjson.encode(redis.call('HGETALL', KEYS[1]))"
# The same for a whole decision batch: one call, one JSON array of flat hashes.
_READ_MANY = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return cjson.encode(out)
"""
# Set ARGV[1] to ARGV[2] unless it holds an earlier time already (one atomic step).
_KEEP_EARLIEST = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if current == nil or tonumber(ARGV[2]) < current then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 0
"""


class FeatureSource(Protocol):
    """What a decision reads and counts of a customer."""

    def get(self, customer_id: str, now: datetime | float) -> CustomerFeatures: ...

    def get_many(
        self, customer_ids: Sequence[str], now: datetime | float
    ) -> list[CustomerFeatures]: ...

    def counter_key(self, customer_id: str) -> str | None:
        """The Redis hash the reservation script counts an issued coupon in (None: call
        record_coupon_issued after the commit instead)."""
        ...

    def record_coupon_issued(self, customer_id: str) -> None: ...


class FeatureUpdates(Protocol):
    """What the update handlers count of a customer."""

    def record_sale(
        self, customer_id: str, total: float, occurred_at: datetime, categories: list[str]
    ) -> None: ...

    def record_follow(self, customer_id: str, at: datetime) -> None: ...

    def mark_linked(self, customer_id: str) -> None: ...

    def mark_unlinked(self, customer_id: str) -> None: ...

    def record_redemption(self, customer_id: str) -> None: ...

    def record_void(self, customer_id: str) -> None: ...


class FeatureStore(FeatureSource, FeatureUpdates, Protocol):
    """Both sides: CustomerFeatureStore, or a test's in-memory twin."""


class CustomerFeatureStore:
    """Per-customer aggregates in one Redis hash each, kept current by the engine's consumers."""

    def __init__(self, client: redis.Redis, prefix: str = "tenin:cf:") -> None:
        self._redis = client
        self._prefix = prefix
        self._record_sale = client.register_script(_RECORD_SALE)
        self._read = client.register_script(_READ)
        self._read_many = client.register_script(_READ_MANY)
        self._keep_earliest = client.register_script(_KEEP_EARLIEST)

    def _key(self, customer_id: str) -> str:
        return f"{self._prefix}{customer_id}"

    def counter_key(self, customer_id: str) -> str | None:
        """The customer's hash: budget/lua.py RESERVE_MANY counts `issued` there."""
        return self._key(customer_id)

    def record_sale(
        self, customer_id: str, total: float, occurred_at: datetime, categories: Iterable[str] = ()
    ) -> None:
        """Count a sale; the hour band uses occurred_at's own (store-local) offset."""
        cats = sorted({c if c in _KNOWN_CATEGORIES else "other" for c in categories})
        args: list[str | float] = [
            float(total),
            occurred_at.timestamp(),
            f"hb:{hour_band(occurred_at.hour)}",
        ]
        self._record_sale(keys=[self._key(customer_id)], args=args + [f"cat:{c}" for c in cats])

    def record_follow(self, customer_id: str, at: datetime) -> None:
        """Remember when the customer first followed the account (the earliest follow wins)."""
        self._keep_earliest(keys=[self._key(customer_id)], args=["follow_ts", at.timestamp()])

    def record_coupon_issued(self, customer_id: str) -> None:
        """Count a coupon issued to the customer."""
        self._redis.hincrby(self._key(customer_id), "issued", 1)

    def record_redemption(self, customer_id: str) -> None:
        """Count a redeemed coupon."""
        self._redis.hincrby(self._key(customer_id), "redeemed", 1)

    def record_void(self, customer_id: str) -> None:
        """Count a voided redemption (it cancels one redemption in the rate)."""
        self._redis.hincrby(self._key(customer_id), "voided", 1)

    def mark_linked(self, customer_id: str) -> None:
        """The customer linked a loyalty card, so their sales become visible."""
        self._redis.hset(self._key(customer_id), "linked", 1)

    def mark_unlinked(self, customer_id: str) -> None:
        """The customer's card moved to another customer: their sales stop showing."""
        self._redis.hdel(self._key(customer_id), "linked")

    def load_aggregates(self, customer_id: str, fields: Mapping[str, float]) -> None:
        """Replace a customer's counters wholesale (seeding a demo or benchmark from simulated history)."""
        key = self._key(customer_id)
        pipe = self._redis.pipeline()
        pipe.delete(key)
        if fields:
            pipe.hset(key, mapping={k: float(v) for k, v in fields.items()})
        pipe.execute()

    def aggregates(self, customer_id: str) -> dict[str, str]:
        """The raw hash fields as str (one round trip)."""
        flat = json.loads(self._read(keys=[self._key(customer_id)]))
        # An empty hash comes back as "{}"; otherwise a flat [field, value, ...] list.
        return dict(zip(flat[::2], flat[1::2], strict=True)) if isinstance(flat, list) else {}

    def get(self, customer_id: str, now: datetime | float) -> CustomerFeatures:
        """The customer's features at `now`; an unknown customer gets the defaults."""
        return features_from_aggregates(self.aggregates(customer_id), _seconds(now))

    def get_many(
        self, customer_ids: Sequence[str], now: datetime | float
    ) -> list[CustomerFeatures]:
        """get() for a decision batch in one round trip."""
        if not customer_ids:
            return []
        return self.features_of(self._read_many(keys=[self._key(c) for c in customer_ids]), now)

    @property
    def client(self) -> redis.Redis:
        """The Redis client it reads through (a decision batch pipelines its reads on it)."""
        return self._redis

    def queue_get_many(self, pipe: redis.client.Pipeline, customer_ids: Sequence[str]) -> None:
        """Queue get_many's one command on `pipe` (its script must be loaded: a pipeline
        does not load it, and answers NOSCRIPT otherwise); `features_of` reads the reply."""
        keys = [self._key(c) for c in customer_ids]
        pipe.evalsha(self._read_many.sha, len(keys), *keys)

    def load_scripts(self) -> None:
        """Load the read script into Redis (after a NOSCRIPT: Redis restarted)."""
        self._redis.script_load(self._read_many.script)

    def features_of(self, reply: bytes | str, now: datetime | float) -> list[CustomerFeatures]:
        """The features in a get_many reply, in the order asked."""
        ts = _seconds(now)
        # cjson writes an empty hash as {} and a filled one as a flat [field, value, ...] list.
        return [
            features_from_aggregates(
                dict(zip(f[::2], f[1::2], strict=True)) if isinstance(f, list) else {}, ts
            )
            for f in json.loads(reply)
        ]


def _seconds(now: datetime | float) -> float:
    return now.timestamp() if isinstance(now, datetime) else float(now)
