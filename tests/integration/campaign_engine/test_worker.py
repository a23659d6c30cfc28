"""The worker on real Kafka, PostgreSQL and Redis with the shipped model: requests in,
decisions and campaign events out through the outbox, features and budgets kept current.

The worker here reads test-only request and update topics (so it does not replay other
tests' traffic); what it produces goes to the real offer.decisions and campaign.events.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url

from services.campaign_engine.bootstrap import Engine, bootstrap
from services.campaign_engine.features import CustomerFeatureStore
from services.campaign_engine.models import Campaign, Customer, Decision, RedemptionSeen
from services.campaign_engine.worker import components, prepare
from shared.bus import KAFKA_PROFILE, KafkaBroker
from shared.config import Settings
from shared.coupons import verify_code
from shared.db import unit_of_work, utcnow
from shared.events import CAMPAIGN_EVENTS, OFFER_DECISIONS, Envelope, encode, make_event
from shared.runtime import run_components
from tests.support.databases import drop_database
from tests.support.kafka_tools import TopicTail
from tests.support.waiting import wait_for
from tests.unit.campaign_engine.fakes import active_campaign, offer_request


@dataclass
class Worker:
    engine: Engine
    broker: KafkaBroker
    requests: str
    updates: str

    def send(self, topic: str, *envelopes: Envelope) -> None:
        producer = self.broker.producer()
        for envelope in envelopes:
            producer.send(topic, envelope.key, encode(envelope))
        producer.flush(timeout=30)
        producer.close()

    def decisions_for(self, request_id: str) -> list[Decision]:
        with self.engine.sessions() as session:
            return list(
                session.execute(select(Decision).where(Decision.request_id == request_id)).scalars()
            )


@pytest.fixture(scope="module")
def worker(real_settings: Settings, ce_template: str) -> Iterator[Worker]:
    server = str(real_settings.database_url)
    name = f"tenin_cew_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(ce_template).database}"'))
    admin.dispose()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = bootstrap(replace(real_settings, database_url=url, relay_poll_seconds=0.02))
    broker = KafkaBroker(str(real_settings.kafka_bootstrap_servers), KAFKA_PROFILE)
    unique = uuid.uuid4().hex[:10]
    running = Worker(engine, broker, f"test.offer.requests.{unique}", f"test.updates.{unique}")
    broker.ensure_topics([running.requests, running.updates])
    prepare(engine, broker)
    stop = threading.Event()
    parts = components(
        engine,
        broker,
        groups=(f"test.ce.d.{unique}", f"test.ce.u.{unique}"),
        request_topics=[running.requests],
        update_topics=[running.updates],
    )
    thread = threading.Thread(target=run_components, args=(parts, stop), daemon=True)
    thread.start()
    yield running
    stop.set()
    thread.join(timeout=60)
    engine.db.dispose()
    drop_database(server, url)


@pytest.fixture(autouse=True)
def only_this_tests_campaigns(worker: Worker) -> None:
    """The engine offers every active campaign: end the previous tests' ones (a private DB)."""
    with unit_of_work(worker.engine.sessions) as session:
        session.execute(update(Campaign).values(status="ended"))


def tail_of(worker: Worker, topic: str) -> closing[TopicTail]:
    """`topic` read from its end now (the real topic holds every earlier test's records:
    reading it from the start took longer than a test waits, on a long-lived broker)."""
    return closing(TopicTail(worker.broker.bootstrap, topic))


def tail_payloads(tail: TopicTail, match: Any, count: int, quiet_s: float = 2.0) -> list[dict]:
    """Payloads the tail has seen for which match(payload) holds: wait for `count`, then
    for quiet (nothing more may arrive: no duplicates)."""

    def found() -> list[dict]:
        return [e.payload for e in tail.matching(lambda e: bool(match(e.payload)))]

    wait_for(lambda: len(found()) >= count, timeout=60, what=f"{count} matching records")
    end = time.monotonic() + quiet_s
    while time.monotonic() < end:
        found()
    return found()


def test_a_redelivered_request_is_decided_once_and_published_once(worker: Worker) -> None:
    campaign = active_campaign(worker.engine.sessions, utcnow())
    request = offer_request()
    request_id = request.payload["request_id"]
    with tail_of(worker, OFFER_DECISIONS) as tail:
        worker.send(worker.requests, request, request)  # the same event id, twice
        [decision] = wait_for(lambda: worker.decisions_for(request_id), what="the decision")
        published = tail_payloads(tail, lambda p: p["request_id"] == request_id, 1)
    assert len(published) == 1
    event = published[0]
    assert event["arm"] in ("treatment", "explore", "none")
    assert event["model_version"] == worker.engine.scorer.model_version != "constant-test"
    if event["coupon"] is not None:
        claims = verify_code(worker.engine.coupon_key, event["coupon"]["code"])
        assert claims.campaign_no == campaign.number
        assert decision.coupon_code == event["coupon"]["code"]
    assert len(worker.decisions_for(request_id)) == 1


def test_campaign_changes_reach_kafka_through_the_outbox(worker: Worker) -> None:
    with tail_of(worker, CAMPAIGN_EVENTS) as tail:
        campaign = active_campaign(worker.engine.sessions, utcnow())
        [event] = tail_payloads(
            tail, lambda p: p["campaign_id"] == campaign.campaign_id and "campaign" in p, 1
        )
    assert (
        event["campaign"]["status"] == "active" and event["campaign"]["number"] == campaign.number
    )


def test_customer_events_and_sales_keep_consent_and_features_current(worker: Worker) -> None:
    active_campaign(worker.engine.sessions, utcnow(), holdout_pct=0)
    customer = f"c_{uuid.uuid4().hex[:16]}"
    sale = make_event(
        "sale.recorded",
        {
            "customer_id": customer,
            "transaction_id": "t1",
            "store_id": "S001",
            "total": 700,
            "categories": ["onigiri"],
            "occurred_at": utcnow().isoformat(),
        },
        key=customer,
        producer="t",
    )
    # Asked before opting out (docs/architecture.md § Consent across topics: the later word
    # counts); the request reaches the engine after the opt-out.
    request = offer_request(customer)
    worker.send(
        worker.updates,
        make_event("customer.followed", {"customer_id": customer}, key=customer, producer="t"),
        sale,
        sale,
        make_event("customer.opted_out", {"customer_id": customer}, key=customer, producer="t"),
    )
    store = CustomerFeatureStore(worker.engine.redis, prefix="ce:cf:")

    def opted_out() -> bool:
        with worker.engine.sessions() as session:
            row = session.get(Customer, customer)
            return bool(row and row.opted_out)

    wait_for(opted_out, what="the opt-out")
    aggregates = store.aggregates(customer)
    assert (
        aggregates["sale_count"] == "1" and "follow_ts" in aggregates
    )  # the resent sale counted once

    worker.send(worker.requests, request)
    [decision] = wait_for(
        lambda: worker.decisions_for(request.payload["request_id"]), what="decision"
    )
    assert (decision.arm, decision.coupon_code, decision.reason) == ("none", None, "opted_out")


def test_redemptions_are_seen_and_exhaust_the_redemption_budget(worker: Worker) -> None:
    campaign = active_campaign(
        worker.engine.sessions,
        utcnow(),
        holdout_pct=0,
        budget={"max_coupons": 100, "max_redemptions": 1},
    )
    decision = None
    for _ in range(20):  # exploration may pick "no coupon" now and then
        request = offer_request()
        worker.send(worker.requests, request)
        [decision] = wait_for(
            lambda r=request: worker.decisions_for(r.payload["request_id"]), what="decision"
        )
        if decision.coupon_code:
            break
    assert decision is not None and decision.coupon_code
    redeemed = make_event(
        "coupon.redeemed",
        {
            "code": decision.coupon_code,
            "customer_id": decision.customer_id,
            "campaign_id": campaign.campaign_id,
            "offer_id": decision.offer_id,
            "transaction_id": f"t-{uuid.uuid4().hex[:8]}",
            "store_id": "S001",
            "discount": 50,
            "basket_total": 900,
        },
        key=decision.customer_id,
        producer="redemption_tracker",
    )

    def seen() -> bool:
        with worker.engine.sessions() as session:
            return (
                session.get(
                    RedemptionSeen, (decision.coupon_code, redeemed.payload["transaction_id"])
                )
                is not None
            )

    with tail_of(worker, CAMPAIGN_EVENTS) as tail:
        worker.send(worker.updates, redeemed)
        wait_for(seen, what="the redemption")
        [exhausted] = tail_payloads(
            tail,
            lambda p: p == {"campaign_id": campaign.campaign_id, "budget": "max_redemptions"},
            1,
        )
    assert exhausted["budget"] == "max_redemptions"
