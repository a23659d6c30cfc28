"""The channel's push bucket in a real Redis at the channel's rate (delivery/rate.py): a
refused push waits for a lease's worth of tokens, so each round trip brings a lease, and
the pushes never beat the rate."""

from __future__ import annotations

from services.chat_agent.delivery.rate import PushRate
from shared.ratelimit import RateLimiter
from shared.redis_client import make_redis

RATE = 2000.0  # the channel's pushes a second: a burst of 200, leases of 20


class Clock:
    """Wall and monotonic time at once, moved only by the test."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_at_the_channels_rate_each_round_trip_brings_a_lease(
    real_services: dict[str, str], unique: str
) -> None:
    clock = Clock()
    limiter = RateLimiter(
        make_redis(real_services["REDIS_URL"]), unique, clock=clock, monotonic=clock
    )
    rate = PushRate(limiter, RATE)
    assert rate.bucket.burst == 200 and rate.bucket.lease == 20
    script = limiter._script
    assert script is not None
    round_trips = {"n": 0}

    def counted(**kwargs: object) -> object:
        round_trips["n"] += 1
        return script(**kwargs)  # type: ignore[arg-type]

    limiter._script = counted  # type: ignore[assignment]
    started, pushes = clock.now, 0
    while pushes < 1200:  # the burst, then 1,000 at the rate
        wait = rate.take()
        if wait:
            clock.now += wait  # the sender waits as told, and asks again
        else:
            pushes += 1
    # Never faster than the rate: 1,000 past the burst take at least half a second.
    assert clock.now - started >= (pushes - 200) / RATE
    # A lease per round trip, and a refusal per lease past the burst (about 110 in all).
    # Waiting for the next token alone brought one or two a trip: about 1,000.
    assert round_trips["n"] <= 130
