"""The worker on real Kafka and PostgreSQL: copies, the POS topic, the DLQ and the outbox."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import (
    CouponCheck,
    CustomerLink,
    Decision,
    Delivery,
    Outbox,
    ProcessedEvent,
    Transaction,
)
from services.redemption_tracker.worker import COPY_GROUPS, components
from shared.bus import KafkaBroker, Producer, broker_from_settings
from shared.coupons import CouponClaims, coupon_key, issue_code, round_up_to_hour
from shared.db import unit_of_work, utcnow
from shared.events import (
    CAMPAIGN_EVENTS,
    COUPON_EVENTS,
    CUSTOMER_EVENTS,
    OFFER_DECISIONS,
    POS_TRANSACTIONS,
    SALES_EVENTS,
    Envelope,
    dlq_topic,
    encode,
    make_event,
)
from shared.runtime import run_components
from tests.integration.redemption_tracker.support import outbox_events, post
from tests.support.redemption_tracker.builders import (
    CampaignSpec,
    decision_event,
    delivered_event,
    linked_event,
    now,
    offer,
    tx,
    uid,
)
from tests.support.waiting import wait_for

TOPICS = [*COPY_GROUPS.values(), POS_TRANSACTIONS]


def _start_at_end(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commit the group's offsets at the end, so it sees only what this test produces."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or [])
        ]
        ends = consumer.end_offsets(tps)
        consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in ends.items()})
    finally:
        consumer.close(autocommit=False)


class TopicReader:
    """Reads a topic from its current end (test helper)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        parts = [
            TopicPartition(topic, p)
            for p in sorted(self._consumer.partitions_for_topic(topic) or [])
        ]
        self._consumer.assign(parts)
        self._consumer.seek_to_end(*parts)
        for tp in parts:
            self._consumer.position(tp)
        self.seen: list[Any] = []

    def read(self) -> list[Any]:
        for records in self._consumer.poll(timeout_ms=200).values():
            self.seen.extend(r for r in records)
        return self.seen

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture(scope="module")
def worker(pg_tracker: Tracker) -> Iterator[tuple[Tracker, KafkaBroker, Producer]]:
    broker = broker_from_settings(pg_tracker.settings)
    assert isinstance(broker, KafkaBroker)
    broker.ensure_topics([*TOPICS, COUPON_EVENTS, SALES_EVENTS, dlq_topic(POS_TRANSACTIONS)])
    prefix = f"test-rt-{uid()}"
    for purpose, topic in COPY_GROUPS.items():
        _start_at_end(broker.bootstrap, f"{prefix}.{purpose}", [topic])
    _start_at_end(broker.bootstrap, f"{prefix}.pos", [POS_TRANSACTIONS])
    # Other tests of the session leave tens of thousands of unsent events behind (the lift
    # test alone ~30k sale.recorded); relaying that backlog is not what this module tests.
    with unit_of_work(pg_tracker.sessions) as s:
        s.execute(update(Outbox).where(Outbox.sent_at.is_(None)).values(sent_at=utcnow()))
    stop = threading.Event()
    thread = threading.Thread(
        target=run_components, args=(components(pg_tracker, broker, prefix), stop), daemon=True
    )
    thread.start()
    producer = broker.producer()
    yield pg_tracker, broker, producer
    stop.set()
    thread.join(timeout=60)
    producer.close()
    assert not thread.is_alive()


def send(producer: Producer, topic: str, key: str, value: bytes) -> None:
    producer.send(topic, key, value)
    producer.flush(timeout=30)


def publish(producer: Producer, env: Envelope, topic: str) -> None:
    send(producer, topic, env.key, encode(env))


def count(tracker: Tracker, stmt: Any) -> int:
    with tracker.sessions() as s:
        return int(s.execute(stmt).scalar_one())


def test_copies_are_kept_from_the_topics_effectively_once(worker: Any) -> None:
    tracker, _, producer = worker
    campaign_id, customer, other = uid("cmp-"), uid("c_"), uid("c_")
    member = "M" + uid()
    spec = {
        "campaign_id": campaign_id,
        "campaign": {
            "campaign_id": campaign_id,
            "number": 900_000 + int(uid()[:4], 16) % 100_000,
            "name": "k",
            "status": "active",
            "starts_at": now().isoformat(),
            "ends_at": now().isoformat(),
            "offers": [offer(0)],
            "budget": {},
            "caps": {},
            "holdout_pct": 10.0,
            "revenue_share": {"pct": 3, "basis": "incremental"},
            "per_call_fee": 2,
        },
    }
    publish(
        producer,
        make_event("campaign.activated", spec, key=campaign_id, producer="campaign_engine"),
        CAMPAIGN_EVENTS,
    )
    first_link = linked_event(tracker, customer, member)
    publish(producer, first_link, CUSTOMER_EVENTS)
    relink = linked_event(tracker, other, member)
    publish(producer, relink, CUSTOMER_EVENTS)
    publish(producer, first_link, CUSTOMER_EVENTS)  # redelivered: changes nothing
    decided = decision_event(customer, campaign_id, "holdout")
    publish(producer, decided, OFFER_DECISIONS)
    publish(producer, decided, OFFER_DECISIONS)
    publish(producer, delivered_event("TN-ANY", customer, campaign_id), COUPON_EVENTS)

    def applied() -> bool:
        with tracker.sessions() as s:
            return bool(
                s.execute(
                    select(func.count()).where(ProcessedEvent.event_id == decided.event_id)
                ).scalar_one()
                and s.execute(
                    select(func.count()).where(Delivery.campaign_id == campaign_id)
                ).scalar_one()
            )

    wait_for(applied, timeout=60, what="the copies")
    wait_for(
        lambda: count(
            tracker, select(func.count()).where(ProcessedEvent.event_id == relink.event_id)
        ),
        timeout=30,
        what="the relink",
    )
    with tracker.sessions() as s:
        link = s.get(CustomerLink, first_link.payload["member_hash"])
        decisions = s.execute(
            select(func.count()).where(Decision.campaign_id == campaign_id)
        ).scalar_one()
        replays = s.execute(
            select(func.count()).where(ProcessedEvent.event_id == first_link.event_id)
        ).scalar_one()
    assert link is not None and link.customer_id == other
    assert decisions == 1 and replays == 1


def test_the_pos_topic_gives_the_http_outcomes_and_publishes_events(
    worker: Any, client: FlaskClient, auth: dict, store: str
) -> None:
    tracker, broker, producer = worker
    c = CampaignSpec(tracker, offers=[offer(0), offer(1, min_basket=5000)])
    member, customer = "M" + uid(), uid("c_")
    from services.redemption_tracker.handlers import handle_event

    handle_event(tracker, "test.copies", linked_event(tracker, customer, member))
    forged = issue_code(
        coupon_key("not-our-key"), CouponClaims(c.number, 0, 1, round_up_to_hour(now()))
    )

    def situations() -> list[dict[str, Any]]:
        return [
            tx(coupons=[c.code()], member_id=member),
            tx(coupons=[forged]),
            tx(coupons=[c.code(1)]),
            tx(coupons=["TN-NOT-A-CODE"]),
        ]

    http = [r["coupons"] for r in post(client, auth["pos"], store, *situations())]
    coupons_topic = TopicReader(broker.bootstrap, COUPON_EVENTS)
    sales_topic = TopicReader(broker.bootstrap, SALES_EVENTS)
    dlq = TopicReader(broker.bootstrap, dlq_topic(POS_TRANSACTIONS))
    streamed_store = store + "-stream"
    streamed = situations()
    for t in streamed:
        send(producer, POS_TRANSACTIONS, streamed_store, json.dumps(t).encode())
    bad = tx()
    bad["total"] = -5
    send(producer, POS_TRANSACTIONS, streamed_store, json.dumps(bad).encode())
    send(producer, POS_TRANSACTIONS, streamed_store, b"{not json")

    def stored() -> list[list[tuple[str, str | None, int]]] | None:
        with tracker.sessions() as s:
            rows = s.execute(
                select(
                    Transaction.transaction_id,
                    CouponCheck.status,
                    CouponCheck.reason,
                    CouponCheck.discount,
                )
                .join(CouponCheck, CouponCheck.tx_id == Transaction.id)
                .where(Transaction.store_id == streamed_store)
            ).all()
        by_tx = {tid: (st, reason, d) for tid, st, reason, d in rows}
        if len(by_tx) < len(streamed):
            return None
        return [[by_tx[t["transaction_id"]]] for t in streamed]

    via_topic = wait_for(stored, timeout=60, what="the streamed transactions")
    assert via_topic == [[(x["status"], x["reason"], x["discount"]) for x in h] for h in http]
    assert via_topic[0][0][0] == "redeemed"

    redeemed_tx = streamed[0]["transaction_id"]
    wait_for(
        lambda: [
            m
            for m in coupons_topic.read()
            if json.loads(m.value)["payload"].get("transaction_id") == redeemed_tx
            and json.loads(m.value)["type"] == "coupon.redeemed"
        ],
        timeout=60,
        what="coupon.redeemed on coupon.events",
    )
    wait_for(
        lambda: [
            m
            for m in sales_topic.read()
            if json.loads(m.value)["payload"]["transaction_id"] == redeemed_tx
        ],
        timeout=60,
        what="sale.recorded on sales.events",
    )
    key = streamed_store.encode()
    wait_for(
        lambda: len([m for m in dlq.read() if m.key == key]) >= 2,
        timeout=60,
        what="both malformed messages dead-lettered",
    )
    dead = [json.loads(m.value) for m in dlq.read() if m.key == key]
    assert any("total" in d["error"] for d in dead)
    assert any("not valid JSON" in d["error"] for d in dead)

    # A redelivered streamed transaction is a duplicate: no second redemption or event.
    send(producer, POS_TRANSACTIONS, streamed_store, json.dumps(streamed[0]).encode())
    marker = tx()
    send(producer, POS_TRANSACTIONS, streamed_store, json.dumps(marker).encode())
    wait_for(
        lambda: count(
            tracker,
            select(func.count()).where(Transaction.transaction_id == marker["transaction_id"]),
        ),
        timeout=60,
        what="marker",
    )
    assert len(outbox_events(tracker, "coupon.redeemed", transaction_id=redeemed_tx)) == 1
    for reader in (coupons_topic, sales_topic, dlq):
        reader.close()


def _offsets(bootstrap: str, topic: str) -> dict[Any, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        return dict(consumer.end_offsets(parts))
    finally:
        consumer.close()


def _commit(bootstrap: str, group: str, offsets: dict[Any, int]) -> None:
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
    finally:
        consumer.close(autocommit=False)


def _run_worker(
    tracker: Tracker, broker: KafkaBroker, prefix: str
) -> tuple[threading.Event, threading.Thread, Any]:
    parts = components(tracker, broker, prefix)
    pos_loop = parts[f"{prefix}.pos"].__self__  # type: ignore[attr-defined]  # a loop's bound `run`
    stop = threading.Event()
    thread = threading.Thread(target=run_components, args=(parts, stop), daemon=True)
    thread.start()
    return stop, thread, pos_loop


def test_restart_and_redelivery_change_nothing(pg_tracker: Tracker, store: str) -> None:
    """Stop the worker mid-stream, restart it, then replay the whole topic: each sale once."""
    tracker = pg_tracker
    broker = broker_from_settings(tracker.settings)
    assert isinstance(broker, KafkaBroker)
    broker.ensure_topics([*TOPICS, dlq_topic(POS_TRANSACTIONS)])
    prefix = f"test-rt-restart-{uid()}"
    start = _offsets(broker.bootstrap, POS_TRANSACTIONS)
    for purpose, topic in COPY_GROUPS.items():
        _start_at_end(broker.bootstrap, f"{prefix}.{purpose}", [topic])
    _commit(broker.bootstrap, f"{prefix}.pos", start)
    c = CampaignSpec(tracker)
    sales = [tx(coupons=[c.code()] if i % 4 == 0 else []) for i in range(40)]
    producer = broker.producer()
    for t in sales:
        producer.send(POS_TRANSACTIONS, store, json.dumps(t).encode())
    producer.flush(timeout=30)

    def recorded() -> int:
        return count(tracker, select(func.count()).where(Transaction.store_id == store))

    stop, thread, _ = _run_worker(tracker, broker, prefix)
    wait_for(lambda: recorded() >= 5, timeout=60, what="some sales")
    stop.set()
    thread.join(timeout=60)
    stop, thread, _ = _run_worker(tracker, broker, prefix)
    wait_for(lambda: recorded() == len(sales), timeout=60, what="every sale after a restart")
    stop.set()
    thread.join(timeout=60)

    # A crash that lost every offset commit: the whole topic is delivered again.
    _commit(broker.bootstrap, f"{prefix}.pos", start)
    stop, thread, pos_loop = _run_worker(tracker, broker, prefix)
    wait_for(lambda: pos_loop.stats.handled >= len(sales), timeout=60, what="the replay")
    stop.set()
    thread.join(timeout=60)
    producer.close()
    assert recorded() == len(sales)
    redeemed = outbox_events(tracker, "coupon.redeemed", store_id=store)
    assert len(redeemed) == len(sales[::4])
    assert len({e["payload"]["code"] for e in redeemed}) == len(sales[::4])
