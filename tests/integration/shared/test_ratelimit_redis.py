"""Token buckets in a real Redis: one Lua script refills and takes atomically
(docs/interfaces.md § Rate limits)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.ratelimit import Bucket, RateLimiter, rate_limiter
from shared.redis_client import make_redis


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.25

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_url(real_services: dict[str, str]) -> str:
    return real_services["REDIS_URL"]


def test_burst_refusal_refill_and_independent_keys(redis_url: str, unique: str) -> None:
    clock = Clock()
    limiter = RateLimiter(make_redis(redis_url), unique, clock=clock)
    bucket = Bucket("b", rate_per_s=4.0, burst=2, fail_open=False)
    assert [limiter.take(bucket, "k").allowed for _ in range(3)] == [True, True, False]
    refused = limiter.take(bucket, "k")
    assert refused.retry_after_s == pytest.approx(0.25)
    assert limiter.take(bucket, "other").allowed
    clock.now += 0.25
    assert limiter.take(bucket, "k").allowed
    assert not limiter.take(bucket, "k").allowed


def test_state_is_keyed_by_namespace_bucket_and_key_and_expires(
    redis_url: str, unique: str
) -> None:
    client = make_redis(redis_url)
    limiter = RateLimiter(client, unique)
    bucket = Bucket("per_key", rate_per_s=0.5, burst=10, fail_open=True)
    limiter.take(bucket, "abc")
    key = f"{unique}:rl:per_key:abc"
    assert float(client.hget(key, "t") or "nan") == pytest.approx(9.0, abs=0.01)
    assert 0 < client.pttl(key) <= bucket.ttl_ms  # gone once the bucket would be full


def test_concurrent_takers_never_share_the_last_token(redis_url: str, unique: str) -> None:
    limiter = rate_limiter(redis_url, unique)
    bucket = Bucket("race", rate_per_s=0.001, burst=25, fail_open=False)
    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(lambda _: limiter.take(bucket, "k"), range(200)))
    assert sum(v.allowed for v in verdicts) == 25


def test_several_buckets_in_one_call_stop_at_the_first_empty_one(
    redis_url: str, unique: str
) -> None:
    limiter = RateLimiter(make_redis(redis_url), unique, clock=Clock())
    key = Bucket("key", rate_per_s=1.0, burst=3, fail_open=True)
    store = Bucket("store", rate_per_s=1.0, burst=1, fail_open=True)
    assert limiter.take_all([(key, "k"), (store, "s")]).allowed
    refused = limiter.take_all([(key, "k"), (store, "s")])
    assert not refused.allowed and refused.retry_after_s == pytest.approx(1.0)
    # The key's token taken by the refused call is held, not lost: the key still gets its
    # burst of 3 in all.
    assert [limiter.take(key, "k").allowed for _ in range(3)] == [True, True, False]


def test_leases_save_round_trips_but_never_exceed_the_burst(redis_url: str, unique: str) -> None:
    bucket = Bucket("busy", rate_per_s=10.0, burst=100, fail_open=True)
    assert bucket.lease == 10
    clock = Clock()  # no refill during the test
    one, two = (RateLimiter(make_redis(redis_url), unique, clock=clock) for _ in range(2))
    calls = {"n": 0}
    script = one._script
    assert script is not None

    def counted(**kwargs: object) -> object:
        calls["n"] += 1
        return script(**kwargs)  # type: ignore[arg-type]

    one._script = counted  # type: ignore[assignment]
    allowed = sum(limiter.take(bucket, "k").allowed for _ in range(50) for limiter in (one, two))
    assert allowed == 100  # both processes served from leases of 10
    assert calls["n"] == 5  # `one`: one round trip per 10 calls
    assert not one.take(bucket, "k").allowed and not two.take(bucket, "k").allowed  # burst spent


def test_concurrent_callers_within_the_burst_are_all_allowed(redis_url: str, unique: str) -> None:
    """Threads racing for leases: one fetches, the others spend what it leased. (When each
    racing thread leased its own share, the first ten emptied a burst the other 40 needed.)"""
    limiter = RateLimiter(make_redis(redis_url), unique)
    for bucket in (
        Bucket("pos", rate_per_s=50.0, burst=200, fail_open=True),
        Bucket("huge", rate_per_s=100_000.0, burst=1_000_000, fail_open=True),
    ):
        for round_ in range(10):
            with ThreadPoolExecutor(50) as pool:
                verdicts = list(pool.map(limiter.take, [bucket] * 50, [f"k{round_}"] * 50))
            assert all(v.allowed for v in verdicts), (bucket.name, round_)


def test_take_each_asks_every_key_in_one_call_and_a_repeated_key_spends_twice(
    redis_url: str, unique: str
) -> None:
    clock = Clock()
    limiter = RateLimiter(make_redis(redis_url), unique, clock=clock)
    bucket = Bucket("issuance", rate_per_s=0.5, burst=2, fail_open=False)  # lease 1: exact
    verdicts = limiter.take_each(bucket, ["a", "b", "a", "a", "c"])
    assert [v.allowed for v in verdicts] == [True, True, True, False, True]
    assert verdicts[3].retry_after_s == pytest.approx(2.0)  # one token at 0.5/s
    # The same state as take(): "a" is empty, "b" has one token left.
    assert not limiter.take(bucket, "a").allowed
    assert [v.allowed for v in limiter.take_each(bucket, ["b", "b"])] == [True, False]
    clock.now += 2.0
    assert [v.allowed for v in limiter.take_each(bucket, ["a"])] == [True]


def test_take_each_serves_a_leased_bucket_from_its_lease(redis_url: str, unique: str) -> None:
    """A bucket with a lease above 1 takes tokens ahead through take_each as through take:
    the next calls for that key are answered in process, and Redis sees one take."""
    clock = Clock()
    client = make_redis(redis_url)
    limiter = RateLimiter(client, unique, clock=clock)
    bucket = Bucket("webhook", rate_per_s=100.0, burst=100, fail_open=True)
    assert bucket.lease == 10
    assert all(v.allowed for v in limiter.take_each(bucket, ["k"]))
    left_after_lease = float(client.hget(f"{unique}:rl:webhook:k", "t") or 0)
    assert left_after_lease == pytest.approx(90.0)  # ten taken at once
    for _ in range(9):  # the nine still held are spent without asking Redis
        assert all(v.allowed for v in limiter.take_each(bucket, ["k"]))
    assert float(client.hget(f"{unique}:rl:webhook:k", "t") or 0) == pytest.approx(90.0)
    assert all(v.allowed for v in limiter.take_each(bucket, ["k"]))  # the lease is spent
    assert float(client.hget(f"{unique}:rl:webhook:k", "t") or 0) == pytest.approx(80.0)
