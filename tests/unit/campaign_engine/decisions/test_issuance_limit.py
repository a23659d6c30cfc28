"""The per-customer issuance bucket in the decision path (docs/interfaces.md § Rate limits):
past it, and whenever Redis cannot say, the decision is `none` / `rate_limited`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from services.campaign_engine.budget.in_memory import InMemoryReservations
from services.campaign_engine.decisions.decide import IssuanceLimit
from shared.embedded import free_port
from shared.events import Envelope
from shared.ratelimit import Bucket, Limits, RateLimiter
from shared.redis_client import make_redis
from tests.unit.campaign_engine.conftest import wired_decider
from tests.unit.campaign_engine.fakes import (
    ConstantScorer,
    FakeFeatures,
    active_campaign,
    offer_request,
)


def decider(sessions: Callable[[], Session], issuance: IssuanceLimit) -> Callable[[Envelope], Any]:
    return wired_decider(
        sessions, InMemoryReservations(), FakeFeatures(), ConstantScorer(), issuance=issuance
    )


def test_a_customer_past_the_issuance_burst_gets_no_coupon(
    sessions: Callable[[], Session],
) -> None:
    active_campaign(sessions, caps={"per_customer_per_day": 10, "per_customer_total": 10})
    limiter = RateLimiter(None, "t")
    bucket = Bucket("issuance", rate_per_s=0.001, burst=2, fail_open=False)
    decide = decider(sessions, lambda cs: [v.allowed for v in limiter.take_each(bucket, cs)])
    customer = "c_fast"
    first, second, third = (decide(offer_request(customer)) for _ in range(3))
    assert first.coupon_code and second.coupon_code
    assert (third.arm, third.reason, third.coupon_code) == ("none", "rate_limited", None)
    other = decide(offer_request("c_other"))
    assert other.coupon_code is not None  # the bucket is per customer


def test_redis_down_means_no_coupon(sessions: Callable[[], Session]) -> None:
    active_campaign(sessions)
    dead = RateLimiter(make_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2), "t")
    issuance = Limits.from_env({})["issuance"]
    decide = decider(sessions, lambda cs: [v.allowed for v in dead.take_each(issuance, cs)])
    decision = decide(offer_request())
    assert (decision.arm, decision.reason, decision.coupon_code) == ("none", "rate_limited", None)
