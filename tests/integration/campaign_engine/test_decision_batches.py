"""Batched decisions on real PostgreSQL, Redis and Kafka: twins decided by two workers at
once, Redis lost mid-batch, and worker processes SIGKILLed in the middle of a batch."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import select

from services.campaign_engine.bootstrap import Engine, OnRedis, engine_redis
from services.campaign_engine.budget.reservations import RedisReservations
from services.campaign_engine.models import Coupon, Decision, Outbox
from shared.bus import KAFKA_PROFILE, KafkaBroker
from shared.config import Settings
from shared.db import utcnow
from shared.events import TOPIC_OF_TYPE, Envelope, decode, encode
from tests.unit.campaign_engine.decisions.test_decide_batch import count
from tests.unit.campaign_engine.fakes import active_campaign, offer_request

REPO = Path(__file__).resolve().parents[3]


def test_two_workers_deciding_the_same_batch_store_each_request_once(
    make_engine_for: Callable[..., Engine],
) -> None:
    first, second = make_engine_for(), make_engine_for()
    campaign = active_campaign(first.sessions, utcnow())
    batch = [offer_request() for _ in range(40)]
    start = threading.Barrier(2)
    results: dict[str, list[Any]] = {}

    def run(name: str, engine: Engine) -> None:
        start.wait(timeout=30)
        try:
            results[name] = engine.decide_batch(batch)
        except psycopg.errors.UniqueViolation as exc:
            # Both workers took a twin's same held reservation, so the same coupon code;
            # when the other's row lands between this INSERT's look at the request id and
            # its own, the coupon code's unique index (not the ON CONFLICT arbiter) refuses
            # it. The batch fails having given back what it reserved, and the consumer
            # loop runs it again (shared/consumer.py), which finds the twins decided.
            assert "uq_decisions_coupon_code" in str(exc)
            results[name] = engine.decide_batch(batch)

    threads = [threading.Thread(target=run, args=p) for p in (("a", first), ("b", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    won = [a or b for a, b in zip(results["a"], results["b"], strict=True)]
    assert all(won) and not any(a and b for a, b in zip(*results.values(), strict=True))
    assert count(first.sessions, Decision) == count(first.sessions, Outbox) == 40
    coupons = count(first.sessions, Coupon)
    usage = first.reservations.usage(campaign.campaign_id, "nobody", "19700101")
    assert usage is not None and usage.issued == coupons == 40  # the losers' reservations released


def test_redis_lost_after_the_reads_means_no_coupon_for_the_batch(
    make_engine_for: Callable[..., Engine], ce_settings: Settings
) -> None:
    engine = make_engine_for()
    active_campaign(engine.sessions, utcnow())
    live = engine.on_redis()
    gone = RedisReservations(engine_redis("redis://127.0.0.1:1/0"))
    engine._on_redis = OnRedis(live.client, gone, live.features, live.markers)
    decided = engine.decide_batch([offer_request() for _ in range(10)])
    assert Counter((d.arm, d.reason) for d in decided if d) == {("none", "redis_unavailable"): 10}
    assert count(engine.sessions, Coupon) == 0


def _send(settings: Settings, topic: str, envelopes: list[Envelope]) -> None:
    broker = KafkaBroker(str(settings.kafka_bootstrap_servers), KAFKA_PROFILE)
    broker.ensure_topics([topic, f"{topic}.updates"], partitions=3)
    producer = broker.producer()
    for envelope in envelopes:
        producer.send(topic, envelope.key, encode(envelope))
    producer.flush(timeout=30)
    producer.close()


def _worker(database_url: str, topic: str, group: str, mode: str, expected: int) -> int:
    command = [sys.executable, "-m", "tests.support.kill_decider", database_url, topic, group]
    return subprocess.run([*command, mode, str(expected)], cwd=REPO, timeout=180).returncode


def test_workers_sigkilled_mid_batch_leave_one_decision_per_request_and_no_cap_overshot(
    engine: Engine, ce_settings: Settings
) -> None:
    campaign = active_campaign(
        engine.sessions,
        utcnow(),
        budget={"max_coupons": 120},
        caps={"per_customer_per_day": 1, "per_customer_total": None},
    )
    customers = [f"c_kill_{uuid.uuid4().hex[:10]}" for _ in range(150)]
    requests = [offer_request(c) for c in customers] + [offer_request(c) for c in customers[:50]]
    resent = [offer_request(r.key, request_id=r.payload["request_id"]) for r in requests[:30]]
    topic, group = f"kill.decisions.{uuid.uuid4().hex[:8]}", f"kill.{uuid.uuid4().hex[:8]}"
    _send(ce_settings, topic, requests + resent)
    url = str(ce_settings.database_url)

    assert _worker(url, topic, group, "after-reserve", len(requests)) == -9
    assert count(engine.sessions, Decision) == 0  # reserved in Redis, nothing committed
    assert _worker(url, topic, group, "after-commit", len(requests)) == -9
    committed_before_kill = count(engine.sessions, Decision)
    assert committed_before_kill > 0  # one batch stored, its offsets not committed
    assert _worker(url, topic, group, "drain", len(requests)) == 0

    with engine.sessions() as session:
        decided = set(session.execute(select(Decision.request_id)).scalars())
        coupons = session.execute(select(Coupon.customer_id, Coupon.decision_id)).all()
        bodies = session.execute(
            select(Outbox.body).where(Outbox.topic == TOPIC_OF_TYPE["offer.decided"])
        ).scalars()
        announced = Counter(decode(b.encode()).payload["request_id"] for b in bodies)
    assert decided == {r.payload["request_id"] for r in requests}  # every request decided
    assert announced == Counter(decided)  # and announced exactly once
    assert len({d for _, d in coupons}) == len(coupons)  # at most one coupon per decision
    assert max(Counter(c for c, _ in coupons).values()) == 1  # the daily cap of one held
    assert 0 < len(coupons) <= 120  # the budget was never overshot
    # and no reservation was left behind: the requests of the batch killed after reserving
    # took over the reservations they held when they came back.
    usage = engine.reservations.usage(campaign.campaign_id, "nobody", "19700101")
    assert usage is not None and usage.issued == len(coupons)
