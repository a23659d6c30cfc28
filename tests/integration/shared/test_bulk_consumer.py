"""Bulk consumers (docs/architecture.md § Hot paths): a group whose reads no one waits on
lets the broker hold its fetch for more records; it still gets every record, in order.
Which groups read in bulk is a choice with consequences (a customer's next step must not
read state a bulk group has not applied yet), so the workers' choices are pinned here."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from shared.bus import KAFKA_PROFILE, KafkaBroker
from shared.bus.profiles import BULK_FETCH
from shared.consumer import ConsumerLoop
from shared.events import CHAT_INBOUND, COUPON_EVENTS


def _records(consumer: Any, wanted: int) -> list[bytes]:
    """The values the consumer reads until it has `wanted` of them (within ~15 s)."""
    seen: list[bytes] = []
    for _ in range(60):
        seen += [m.value for m in consumer.poll(timeout_ms=250)]
        if len(seen) >= wanted:
            break
    return seen


def test_a_bulk_consumer_fetches_with_the_bulk_settings_and_gets_every_record_in_order(
    real_services: dict[str, str], unique: str
) -> None:
    broker = KafkaBroker(
        real_services["KAFKA_BOOTSTRAP_SERVERS"], KAFKA_PROFILE, namespace=f"bulk.{unique}."
    )
    broker.ensure_topics(["t"], partitions=1)
    producer = broker.producer()
    for i in range(5):
        producer.send("t", "one key", f"r{i}".encode())
    producer.flush(timeout=30)
    bulk, plain = broker.consumer("g.bulk", ["t"], bulk=True), broker.consumer("g.plain", ["t"])
    try:
        settings = bulk._consumer.config  # type: ignore[attr-defined]  # the adapter's client
        assert {k: settings[k] for k in BULK_FETCH} == BULK_FETCH
        assert plain._consumer.config["fetch_min_bytes"] == 1  # type: ignore[attr-defined]
        expected = [f"r{i}".encode() for i in range(5)]
        assert _records(bulk, 5) == expected
        assert _records(plain, 5) == expected
    finally:
        for consumer in (bulk, plain):
            consumer.close()
        producer.close()


def test_only_chat_agents_coupon_events_and_the_engines_updates_are_read_in_bulk() -> None:
    from services.campaign_engine.worker import DECISION_LOOP, UPDATES_LOOP
    from services.chat_agent.worker import BULK_TOPICS, GROUPS

    assert BULK_TOPICS == (COUPON_EVENTS,)
    assert CHAT_INBOUND not in BULK_TOPICS
    assert {topic for _, topic in GROUPS} >= set(BULK_TOPICS)
    # The engine's updates may lag the asks: consent goes by the later word
    # (docs/architecture.md § Consent across topics). Its decisions are never bulk.
    assert UPDATES_LOOP.get("bulk") is True and not DECISION_LOOP.get("bulk")


def test_a_consumer_loop_asks_its_broker_for_a_bulk_consumer_only_when_told() -> None:
    asked: list[bool] = []

    class Recording:
        name = "recording"

        def consumer(self, group_id: str, topics: list[str], *, bulk: bool = False) -> Any:
            asked.append(bulk)
            raise RuntimeError("enough")

    for bulk in (True, False):
        loop: ConsumerLoop[Any] = ConsumerLoop(Recording(), "g", ["t"], print, bulk=bulk)  # type: ignore[arg-type]  # a stand-in broker
        with contextlib.suppress(RuntimeError):
            loop.run_once(threading.Event())
    assert asked == [True, False]
