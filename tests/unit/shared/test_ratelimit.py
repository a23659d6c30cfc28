"""Token buckets without Redis, and with a Redis that is down (docs/interfaces.md § Rate limits)."""

from __future__ import annotations

import time

import pytest

from shared.embedded import free_port
from shared.http.problems import problem_response, too_many_requests
from shared.ratelimit import (
    RETRY_REDIS_AFTER_S,
    Bucket,
    Limits,
    RateLimitConfigError,
    RateLimiter,
)
from shared.redis_client import make_redis


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def in_process(clock: Clock) -> RateLimiter:
    return RateLimiter(None, "t", clock=clock)


def test_a_burst_is_allowed_then_refused_with_the_wait_for_one_token() -> None:
    bucket = Bucket("b", rate_per_s=2.0, burst=3, fail_open=True)
    limiter = in_process(Clock())
    assert [limiter.take(bucket, "k").allowed for _ in range(4)] == [True, True, True, False]
    refused = limiter.take(bucket, "k")
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(0.5)


def test_tokens_refill_at_the_rate_and_never_beyond_the_burst() -> None:
    bucket = Bucket("b", rate_per_s=2.0, burst=3, fail_open=True)
    clock = Clock()
    limiter = in_process(clock)
    for _ in range(3):
        limiter.take(bucket, "k")
    clock.now += 0.5  # one token back
    assert limiter.take(bucket, "k").allowed
    assert not limiter.take(bucket, "k").allowed
    clock.now += 3600  # an hour idle: full again, but no more than the burst
    assert [limiter.take(bucket, "k").allowed for _ in range(4)] == [True, True, True, False]


def test_buckets_are_independent_per_key_and_per_bucket() -> None:
    one = Bucket("one", rate_per_s=1.0, burst=1, fail_open=True)
    two = Bucket("two", rate_per_s=1.0, burst=1, fail_open=True)
    limiter = in_process(Clock())
    assert limiter.take(one, "a").allowed
    assert not limiter.take(one, "a").allowed
    assert limiter.take(one, "b").allowed
    assert limiter.take(two, "a").allowed


def test_redis_down_lets_fail_open_buckets_through_and_refuses_fail_closed_ones() -> None:
    dead = make_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    limiter = RateLimiter(dead, "t")
    limits = Limits.from_env({})
    assert limits["key_pos"].fail_open and limits["store"].fail_open
    assert not limits["issuance"].fail_open
    assert limiter.take(limits["key_pos"], "key").allowed
    assert limiter.take(limits["store"], "S001").allowed
    refused = limiter.take(limits["issuance"], "customer")
    assert not refused.allowed
    assert refused.retry_after_s == RETRY_REDIS_AFTER_S


def test_a_dead_redis_is_not_asked_again_for_a_while() -> None:
    dead = make_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    limiter = RateLimiter(dead, "t")
    bucket = Bucket("b", rate_per_s=1.0, burst=1, fail_open=True)
    limiter.take(bucket, "k")
    started = time.perf_counter()
    for _ in range(100):
        assert limiter.take(bucket, "k").allowed
    assert time.perf_counter() - started < 0.1


def test_limits_come_from_the_environment() -> None:
    limits = Limits.from_env({"TENIN_RATE_LIMIT_KEY_POS": "7.5/40"})
    assert limits.for_role("pos") == Bucket("key_pos", 7.5, 40, True)
    assert limits.for_role("members").name == "key_members"
    for raw in ("fast", "10", "0/10", "10/0", "inf/10", "10/2.5"):
        with pytest.raises(RateLimitConfigError, match="TENIN_RATE_LIMIT_STORE"):
            Limits.from_env({"TENIN_RATE_LIMIT_STORE": raw})


@pytest.mark.parametrize(("wait", "header"), [(0.0, "1"), (0.01, "1"), (1.0, "1"), (1.2, "2")])
def test_429_says_when_to_retry_in_whole_seconds(wait: float, header: str) -> None:
    response = problem_response(too_many_requests(wait, "slow down"))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == header
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["retry_after"] == int(header)


def test_take_all_stops_at_the_first_empty_bucket() -> None:
    key = Bucket("key", rate_per_s=1.0, burst=3, fail_open=True)
    store = Bucket("store", rate_per_s=1.0, burst=1, fail_open=True)
    limiter = in_process(Clock())
    assert limiter.take_all([(key, "k"), (store, "s")]).allowed
    assert not limiter.take_all([(key, "k"), (store, "s")]).allowed  # store empty
    assert limiter.take(key, "k").allowed  # the key bucket paid for both calls: 1 left
    assert not limiter.take(key, "k").allowed


def test_redis_down_refuses_a_mix_of_open_and_closed_buckets() -> None:
    dead = make_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    limits = Limits.from_env({})
    limiter = RateLimiter(dead, "t")
    assert limiter.take_all([(limits["key_pos"], "k"), (limits["store"], "s")]).allowed
    assert not limiter.take_all([(limits["key_pos"], "k"), (limits["issuance"], "c")]).allowed
