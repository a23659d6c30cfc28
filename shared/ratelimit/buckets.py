"""Token buckets in Redis, or in process (docs/interfaces.md § Rate limits).

A bucket holds up to `burst` tokens and refills at `rate_per_s`; every call takes one.
The state of each (bucket, key) lives in Redis under `<namespace>:rl:<bucket>:<key>` and
is refilled and taken by one Lua script, so concurrent processes never both spend the
last token. A key expires once its bucket would be full again: no state is kept for
callers who went quiet.

When Redis cannot be reached the bucket decides: `fail_open` lets the call through
(POS, webhooks: availability first), otherwise it is refused (coupon issuance: never
more coupons than the limit). After a failure the limiter stops asking Redis for
`RETRY_REDIS_AFTER_S`, so a dead Redis costs one short timeout, not one per request.

A busy bucket is not asked once per call: a process takes `Bucket.lease` tokens at a time
(a tenth of the burst, at most a second's refill; 1, exact, for small buckets such as
issuance) and spends them locally for at most `LEASE_S`. Tokens never exceed the bucket:
leases only move them early, and what a process does not spend in time is lost (stricter).

Without a Redis client (the embedded default without REDIS_URL, unit tests) the same
algorithm runs in process: each process then has its own buckets.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import structlog
from redis import Redis, RedisError

from shared.ratelimit.scripts import TAKE_EACH_SCRIPT, TAKE_SCRIPT

log = structlog.get_logger(__name__)

RETRY_REDIS_AFTER_S = 5.0
REDIS_TIMEOUT_S = 0.25  # a limiter that waits longer than this costs more than it saves
IN_PROCESS_MAX_KEYS = 100_000
# A process holds tokens it took in advance (Bucket.lease) at most this long; what it has
# not spent by then is dropped, which only ever makes the limit stricter.
LEASE_S = 1.0


@dataclass(frozen=True)
class Bucket:
    """A named limit: `burst` calls at once, then `rate_per_s` a second.

    `fail_open` says what happens when the limiter's store is down: let calls through
    (True) or refuse them (False).
    """

    name: str
    rate_per_s: float
    burst: int
    fail_open: bool

    def __post_init__(self) -> None:
        if not (self.rate_per_s > 0 and math.isfinite(self.rate_per_s)):
            raise ValueError(f"bucket {self.name}: rate_per_s must be a positive number")
        if self.burst < 1:
            raise ValueError(f"bucket {self.name}: burst must be at least 1")

    @property
    def lease(self) -> int:
        """Tokens one process takes from Redis at a time and spends locally within
        LEASE_S: a tenth of the burst, at most a LEASE_S's refill, at least 1 (exact)."""
        return max(1, min(self.burst // 10, int(self.rate_per_s * LEASE_S)))

    @property
    def ttl_ms(self) -> int:
        """How long an idle bucket's state matters: until it would be full again."""
        return int(math.ceil(self.burst / self.rate_per_s * 1000)) + 1000


@dataclass(frozen=True)
class Verdict:
    """The answer for one call: allowed, or how long to wait before the next token."""

    allowed: bool
    retry_after_s: float


ALLOWED = Verdict(True, 0.0)


class RateLimiter:
    """Takes tokens from buckets in Redis (or in process when `redis` is None)."""

    def __init__(
        self,
        redis: Redis | None,
        namespace: str,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._namespace = namespace or "tenin"
        self._clock = clock
        self._monotonic = monotonic
        self._script = redis.register_script(TAKE_SCRIPT) if redis is not None else None
        self._each = redis.register_script(TAKE_EACH_SCRIPT) if redis is not None else None
        self._redis_down_until = 0.0
        self._local = _InProcessBuckets()
        self._leases = _Leases()
        self._fetching = _KeyLocks()

    def take(self, bucket: Bucket, key: str) -> Verdict:
        """Take one token from `bucket` for `key`."""
        return self.take_all([(bucket, key)])

    def take_each(self, bucket: Bucket, keys: Sequence[str]) -> list[Verdict]:
        """take() for each key (a decision batch's customers; a key may repeat): the keys
        this process holds no lease for are asked in one script call (TAKE_EACH_SCRIPT)."""
        now, mono, verdicts = self._clock(), self._monotonic, [ALLOWED] * len(keys)
        if self._each is None:
            return [self._local.take_all([(bucket, key)], now) for key in keys]
        # A lease of 1 (issuance) is spent as it is granted: nothing is ever held for it, so
        # its keys skip the lease book (three locked calls per key on the decision thread).
        leased = bucket.lease > 1
        ask = [
            i
            for i, k in enumerate(keys)
            if not (leased and self._leases.spend_all([(bucket, k)], mono()))
        ]
        if ask and mono() >= self._redis_down_until:
            prefix = f"{self._namespace}:rl:{bucket.name}:"
            args: list[str | int] = [
                repr(now),
                str(bucket.rate_per_s),
                bucket.burst,
                bucket.ttl_ms,
                bucket.lease,
            ]
            try:
                answer = self._each(keys=[prefix + keys[i] for i in ask], args=args)
            except (RedisError, OSError) as exc:
                self._redis_down_until = mono() + RETRY_REDIS_AFTER_S
                log.warning("rate_limit_store_unavailable", error=type(exc).__name__)
            else:
                for n, i in enumerate(ask):
                    allowed, wait, granted = answer[3 * n : 3 * n + 3]
                    if not int(allowed):
                        verdicts[i] = Verdict(False, float(wait))
                    elif leased:
                        self._leases.add([(bucket, keys[i])], [int(granted)], mono())
                        self._leases.spend_all([(bucket, keys[i])], mono(), force=True)
                return verdicts
        for i in ask:  # Redis is down: the bucket decides
            verdicts[i] = _when_down([(bucket, keys[i])])
        return verdicts

    def take_all(self, takes: Sequence[tuple[Bucket, str]]) -> Verdict:
        """Take one token from each (bucket, key), in order, in one round trip; refused at
        the first empty bucket. With Redis down: allowed only if every bucket fails open.

        A bucket whose `lease` is above 1 is served from tokens this process took in
        advance, so most calls on a busy key need no round trip at all."""
        now = self._clock()
        if self._script is None:
            return self._local.take_all(takes, now)
        if self._leases.spend_all(takes, self._monotonic()):
            return ALLOWED
        if self._monotonic() < self._redis_down_until:
            return _when_down(takes)
        # One thread of this process at a time asks Redis for these keys: racing threads
        # would each lease tokens and leave the bucket empty for the next one.
        with self._fetching.holding(takes):
            if self._leases.spend_all(takes, self._monotonic()):
                return ALLOWED  # a racing thread has just leased them
            if self._monotonic() < self._redis_down_until:
                return _when_down(takes)  # it found Redis down meanwhile
            return self._fetch(takes, now)

    def _fetch(self, takes: Sequence[tuple[Bucket, str]], now: float) -> Verdict:
        """Take (and lease) tokens from Redis for the takes this process holds none of."""
        assert self._script is not None  # without Redis, take_all answers in process
        missing = self._leases.missing(takes, self._monotonic())
        missing = missing or list(takes)  # a racing thread spent the last held token
        args: list[float | int | str] = [repr(now)]
        for bucket, _ in missing:
            args += [bucket.rate_per_s, bucket.burst, bucket.ttl_ms, bucket.lease]
        try:
            allowed, wait, *granted = self._script(
                keys=[f"{self._namespace}:rl:{bucket.name}:{key}" for bucket, key in missing],
                args=args,
            )
        except (RedisError, OSError) as exc:
            self._redis_down_until = self._monotonic() + RETRY_REDIS_AFTER_S
            log.warning(
                "rate_limit_store_unavailable",
                buckets=[bucket.name for bucket, _ in takes],
                error=type(exc).__name__,
            )
            return _when_down(takes)
        self._leases.add(missing, [int(n) for n in granted], self._monotonic())
        if not int(allowed):
            return Verdict(False, float(wait))
        self._leases.spend_all(takes, self._monotonic(), force=True)
        return ALLOWED


def _when_down(takes: Sequence[tuple[Bucket, str]]) -> Verdict:
    """The answer while the store is unreachable: open only if every bucket fails open."""
    if all(bucket.fail_open for bucket, _ in takes):
        return ALLOWED
    return Verdict(False, RETRY_REDIS_AFTER_S)


class _KeyLocks:
    """Striped locks over (bucket, key) pairs; `holding` takes those of some pairs in a fixed
    order, so two callers never wait on each other crosswise."""

    STRIPES = 64

    def __init__(self) -> None:
        self._locks = [threading.Lock() for _ in range(self.STRIPES)]

    @contextlib.contextmanager
    def holding(self, takes: Sequence[tuple[Bucket, str]]) -> Iterator[None]:
        stripes = sorted({hash((bucket.name, key)) % self.STRIPES for bucket, key in takes})
        with contextlib.ExitStack() as stack:
            for stripe in stripes:
                stack.enter_context(self._locks[stripe])
            yield


class _Leases:
    """Tokens taken from Redis in advance, per (bucket, key), each usable until it expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], tuple[int, float]] = {}

    def missing(self, takes: Sequence[tuple[Bucket, str]], now: float) -> list[tuple[Bucket, str]]:
        """The takes this process holds no live token for."""
        with self._lock:
            return [
                (bucket, key)
                for bucket, key in takes
                if not _live(self._held.get((bucket.name, key)), now)
            ]

    def spend_all(
        self, takes: Sequence[tuple[Bucket, str]], now: float, *, force: bool = False
    ) -> bool:
        """Spend one held token per take if every take has one (or `force`: the caller was
        just granted them, and a racing thread may have spent one; it overdraws by one)."""
        with self._lock:
            held = [self._held.get((bucket.name, key), (0, 0.0)) for bucket, key in takes]
            if not force and not all(_live(h, now) for h in held):
                return False
            for (bucket, key), (n, until) in zip(takes, held, strict=True):
                self._held[(bucket.name, key)] = (n - 1, until)
            return True

    def add(self, takes: Sequence[tuple[Bucket, str]], granted: list[int], now: float) -> None:
        """Hold what Redis granted (one count per take, in order; fewer when it stopped)."""
        with self._lock:
            if len(self._held) >= IN_PROCESS_MAX_KEYS:
                self._held = {k: v for k, v in self._held.items() if v[1] > now}
            for (bucket, key), n in zip(takes, granted, strict=False):
                left, until = self._held.get((bucket.name, key), (0, 0.0))
                left = left if until > now else 0  # an expired lease is dropped
                self._held[(bucket.name, key)] = (max(left, 0) + n, now + LEASE_S)


def _live(held: tuple[int, float] | None, now: float) -> bool:
    return held is not None and held[0] >= 1 and held[1] > now


class _InProcessBuckets:
    """The Lua script's algorithm on a dict, for a process without Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[tuple[str, str], tuple[float, float, float]] = {}

    def take_all(self, takes: Sequence[tuple[Bucket, str]], now: float) -> Verdict:
        with self._lock:
            if len(self._state) >= IN_PROCESS_MAX_KEYS:
                self._forget_expired(now)
            for bucket, key in takes:
                tokens, ts, _ = self._state.get((bucket.name, key), (bucket.burst, now, 0.0))
                if now > ts:
                    tokens, ts = min(bucket.burst, tokens + (now - ts) * bucket.rate_per_s), now
                allowed = tokens >= 1
                tokens -= 1 if allowed else 0
                self._state[(bucket.name, key)] = (tokens, ts, now + bucket.ttl_ms / 1000)
                if not allowed:
                    return Verdict(False, (1 - tokens) / bucket.rate_per_s)
            return ALLOWED

    def _forget_expired(self, now: float) -> None:
        expired = [k for k, (_, _, until) in self._state.items() if until <= now]
        for k in expired or list(self._state)[: IN_PROCESS_MAX_KEYS // 10]:
            del self._state[k]
