"""`tenin worker chat_agent`: the consumers, the outbox relay and the delivery loop."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterable, Sequence

import structlog

from services.chat_agent import bootstrap
from services.chat_agent.chat import Chat
from services.chat_agent.delivery import DeliveryLoop, RetryPolicy
from services.chat_agent.handlers import handle_inbound
from services.chat_agent.models import Outbox
from services.chat_agent.offers import (
    handle_campaign_event,
    handle_coupon_event,
    handle_decision,
    release_overdue,
)
from shared.bus import Broker, Consumer, Message, Producer, broker_from_settings
from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.db import utcnow
from shared.events import (
    CAMPAIGN_EVENTS,
    CHAT_INBOUND,
    COUPON_EVENTS,
    CUSTOMER_EVENTS,
    OFFER_DECISIONS,
    OFFER_REQUESTS,
    dlq_topic,
)
from shared.outbox import OutboxRelay
from shared.runtime import run_components

log = structlog.get_logger(__name__)

HOUSEKEEPING_SECONDS = 1.0
CONSUMED = (CHAT_INBOUND, OFFER_DECISIONS, COUPON_EVENTS, CAMPAIGN_EVENTS)
PRODUCED = (CUSTOMER_EVENTS, OFFER_REQUESTS, COUPON_EVENTS)


def _line_timestamp(message: Message) -> int:
    try:
        return int(json.loads(message.value)["payload"]["event"]["timestamp"])
    except (ValueError, KeyError, TypeError):
        return 0  # undecodable: the loop dead-letters it wherever it sorts


class _TimestampOrderedConsumer:
    """Hands each poll batch over sorted by LINE timestamp within each partition."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def poll(self, timeout_ms: int = 500, max_records: int = 100) -> list[Message]:
        batch = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        # Stable: equal timestamps keep their offset order.
        return sorted(batch, key=lambda m: (m.topic, m.partition, _line_timestamp(m)))

    def commit(self, messages: Sequence[Message]) -> None:
        self._consumer.commit(messages)

    def close(self) -> None:
        self._consumer.close()


class TimestampOrderedBroker:
    """A broker whose consumers sort batches by LINE timestamp (chat.inbound only)."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self.name = broker.name

    def producer(self) -> Producer:
        return self._broker.producer()

    def consumer(self, group_id: str, topics: Sequence[str]) -> Consumer:
        return _TimestampOrderedConsumer(self._broker.consumer(group_id, topics))

    def ensure_topics(self, topics: Iterable[str], partitions: int = 3) -> None:
        self._broker.ensure_topics(topics, partitions)


def consumer_loops(
    chat: Chat, broker: Broker, group_prefix: str = "chat_agent"
) -> dict[str, ConsumerLoop]:
    """One consumer group per input topic, each with its own DLQ."""
    attempts = chat.settings.consumer_max_attempts
    routes: list[tuple[str, str, Callable[[Chat, object], None], Broker]] = [
        ("inbound", CHAT_INBOUND, handle_inbound, TimestampOrderedBroker(broker)),  # type: ignore[list-item]
        ("offers", OFFER_DECISIONS, handle_decision, broker),  # type: ignore[list-item]
        ("coupons", COUPON_EVENTS, handle_coupon_event, broker),  # type: ignore[list-item]
        ("campaigns", CAMPAIGN_EVENTS, handle_campaign_event, broker),  # type: ignore[list-item]
    ]
    return {
        name: ConsumerLoop(
            via,
            f"{group_prefix}.{name}",
            [topic],
            functools.partial(handler, chat),
            max_attempts=attempts,
        )
        for name, topic, handler, via in routes
    }


def housekeeping(chat: Chat) -> Callable[[threading.Event], None]:
    """Release overdue held greetings and close idle conversation sessions (CPS)."""

    def run(stop: threading.Event) -> None:
        while not stop.wait(HOUSEKEEPING_SECONDS):
            try:
                release_overdue(chat)
                chat.conversations.sweep(utcnow().timestamp())
            except Exception:
                log.exception("housekeeping_failed")

    return run


def run(
    settings: Settings,
    stop: threading.Event,
    *,
    broker: Broker | None = None,
    chat: Chat | None = None,
    delivery_policy: RetryPolicy | None = None,
    group_prefix: str = "chat_agent",
) -> int:
    """Run every chat_agent worker component until `stop`; returns the exit code."""
    broker = broker or broker_from_settings(settings)
    broker.ensure_topics([*CONSUMED, *PRODUCED, *(dlq_topic(t) for t in CONSUMED)])
    chat = chat or bootstrap.chat(settings)
    deliveries = DeliveryLoop(
        chat.sessions, bootstrap.line_client(settings), policy=delivery_policy
    )
    chat.kick = deliveries.kick
    relay = OutboxRelay(
        chat.sessions, Outbox, broker.producer(), poll_seconds=settings.relay_poll_seconds
    )
    components: dict[str, Callable[[threading.Event], None]] = {
        f"consumer-{name}": loop.run
        for name, loop in consumer_loops(chat, broker, group_prefix).items()
    }
    components["outbox-relay"] = relay.run
    components["delivery"] = deliveries.run
    components["housekeeping"] = housekeeping(chat)
    return run_components(components, stop)
