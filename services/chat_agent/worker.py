"""`tenin worker chat_agent`: the consumers, the outbox relay, the delivery loop, housekeeping
(or `tenin relay chat_agent`: the relay alone, with TENIN_OUTBOX_RELAY=process)."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import structlog

from services.chat_agent.bootstrap import WORKER_POOL_SIZE, Dependencies, bootstrap
from services.chat_agent.delivery import queue
from services.chat_agent.delivery.curl import delivery_sender
from services.chat_agent.delivery.loop import DeliveryLoop, RetryPolicy
from services.chat_agent.delivery.rate import PushRate
from services.chat_agent.handlers import handlers, messaging, offer_batches
from services.chat_agent.line.ordering import TimestampOrderedBroker
from services.chat_agent.models import Outbox, ProcessedEvent
from services.chat_agent.offers import asking
from services.chat_agent.offers.held_greetings import release_held_greetings
from shared.bus import Broker
from shared.config import Settings
from shared.consumer import BatchConsumerLoop, ConsumerLoop, route_by_type
from shared.db import make_engine, make_session_factory, utcnow
from shared.dead_letters import DeadLetterSeal
from shared.events import (
    CAMPAIGN_EVENTS,
    CHAT_INBOUND,
    COUPON_EVENTS,
    CUSTOMER_EVENTS,
    OFFER_DECISIONS,
    OFFER_REQUESTS,
    Envelope,
    dlq_topic,
)
from shared.outbox_relay import OutboxRelay, relays_in_workers, worker_relay
from shared.retention import pruner
from shared.runtime import Component, run_components

log = structlog.get_logger(__name__)

HOUSEKEEPING_SECONDS = 1.0
# Delivery attempts in flight at once, and rows claimed per round (docs/interfaces.md
# § Campaign drops: a drop's pushes go out at the channel's rate, not one at a time). In
# flight = rate x round trip: 16 keep 2,000 pushes/s going at an 8 ms round trip. They are
# driven by libcurl from one thread (delivery/curl.py), so more in flight costs no more
# CPU per push (threads did: 32 cost ~40% more than 16); a platform further away needs
# more. Against the local recording server 32 were slower than 16 (its threads contend).
DELIVERY_SENDERS = 16
DELIVERY_BATCH = 256
# The delivery loop is kicked by every handler that queues a message in this process; its
# idle poll only finds retries and leases coming due, and drop pushes released by
# `drop.queued`. A claim every 50 ms (the loop's default) was a transaction 20 times a
# second for nothing, taking the GIL from the chat path (bench/chat_e2e_latency.py).
DELIVERY_IDLE_POLL_S = 0.25
# One consumer group per input topic, each with its own DLQ: "<prefix>.<name>" reads topic.
GROUPS = (
    ("inbound", CHAT_INBOUND),
    ("offers", OFFER_DECISIONS),
    ("coupons", COUPON_EVENTS),
    ("campaigns", CAMPAIGN_EVENTS),
)
CONSUMED = tuple(topic for _, topic in GROUPS)
# Read in bulk (shared/bus/profiles.BULK_FETCH): no customer waits on a thank-you for a
# redemption by the millisecond. Campaign events are not: a greeting right after a
# campaign starts must find it active.
BULK_TOPICS = (COUPON_EVENTS,)
PRODUCED = (CUSTOMER_EVENTS, OFFER_REQUESTS, COUPON_EVENTS)


def consumer_loops(
    deps: Dependencies,
    broker: Broker,
    group_prefix: str = "chat_agent",
    relay: OutboxRelay | None = None,
) -> dict[str, ConsumerLoop[Envelope]]:
    """One consumer group per input topic; chat.inbound is read in LINE timestamp order.

    With `relay`, the inbound loop publishes the events its poll committed itself, at once
    (shared/outbox_eager.py): a customer is waiting for the offer it asks for.
    """
    registry = handlers(deps)
    handle = route_by_type(registry)
    options: dict[str, Any] = {
        "max_attempts": deps.settings.consumer_max_attempts,
        "seal": DeadLetterSeal.for_settings(deps.settings),
        # A type no handler takes is passed over undecoded: coupon.events carries this
        # worker's own coupon.delivered, one a push, and it applies only coupon.redeemed.
        "handles": registry.keys(),
    }
    loops: dict[str, ConsumerLoop[Envelope]] = {
        name: ConsumerLoop(
            TimestampOrderedBroker(broker) if topic == CHAT_INBOUND else broker,
            f"{group_prefix}.{name}",
            [topic],
            handle,
            publish_eagerly=relay if topic == CHAT_INBOUND else None,
            bulk=topic in BULK_TOPICS,
            **options,
        )
        for name, topic in GROUPS
        if name != "offers"
    }
    # Decisions in batches: a drop's coupons are queued a poll at a time (drops/pushes.py).
    loops["offers"] = BatchConsumerLoop(
        broker, f"{group_prefix}.offers", [OFFER_DECISIONS], offer_batches(deps, handle), **options
    )
    return loops


def housekeeping(deps: Dependencies) -> Component:
    """Release overdue held greetings and close idle conversation sessions (CPS)."""
    sends = messaging(deps)

    def run(stop: threading.Event) -> None:
        while not stop.wait(HOUSEKEEPING_SECONDS):
            try:
                release_held_greetings(**sends)
                deps.conversations.sweep(utcnow().timestamp())
            except Exception:
                log.exception("housekeeping_failed")

    return run


def components(
    deps: Dependencies,
    broker: Broker,
    *,
    delivery_policy: RetryPolicy | None = None,
    group_prefix: str = "chat_agent",
) -> dict[str, Component]:
    """Every worker thread by name: consumers, outbox relay (unless relay processes publish
    the outbox: TENIN_OUTBOX_RELAY=process), delivery loop, housekeeping."""
    deliveries = DeliveryLoop(
        deps.sessions,
        None,
        sender=delivery_sender(deps.settings, DELIVERY_SENDERS),
        policy=delivery_policy,
        wake=deps.deliveries_due,
        # Drop pushes: the channel's rate across workers, attempted many at a time.
        push_rate=PushRate(deps.limiter, deps.settings.line_push_rate_per_s),
        batch_size=DELIVERY_BATCH,
        poll_seconds=DELIVERY_IDLE_POLL_S,
        handoff=deps.handoff,
    )
    relay = outbox_relay(deps, broker) if relays_in_workers(deps.settings) else None
    parts: dict[str, Component] = {
        f"consumer-{name}": loop.run
        for name, loop in consumer_loops(deps, broker, group_prefix, relay).items()
    }
    if relay is not None:
        parts["outbox-relay"] = relay.run
    parts["delivery"] = deliveries.run
    parts["housekeeping"] = housekeeping(deps)
    return parts


def outbox_relay(deps: Dependencies, broker: Broker) -> OutboxRelay:
    """The worker's relay (shared.outbox_relay.worker_relay), which also prunes finished
    deliveries (they hold LINE user ids and message texts) and old offer requests
    (shared/retention.py)."""
    settings = deps.settings
    finished = pruner(deps.sessions, queue.FINISHED, settings.delivery_retention_days)
    asked = pruner(deps.sessions, asking.ASKED, settings.offer_request_retention_days)
    return worker_relay(
        deps.sessions,
        Outbox,
        broker,
        deps.settings,
        ProcessedEvent,
        consumed=CONSUMED,
        also=[finished, asked],
    )


def worker_dependencies(settings: Settings, broker: Broker | None = None) -> Dependencies:
    """`bootstrap`'s dependencies on an engine without a ping per checkout (loops retry)."""
    deps = bootstrap(settings, broker=broker)
    engine = make_engine(
        settings.effective_database_url, pool_size=WORKER_POOL_SIZE, pre_ping=False
    )
    return replace(deps, engine=engine, sessions=make_session_factory(engine))


def run(
    settings: Settings,
    stop: threading.Event,
    *,
    broker: Broker | None = None,
    deps: Dependencies | None = None,
    delivery_policy: RetryPolicy | None = None,
    group_prefix: str = "chat_agent",
) -> int:
    """Run every chat_agent worker component until `stop`; returns the exit code."""
    deps = deps or worker_dependencies(settings, broker)
    broker = broker or deps.broker()
    broker.ensure_topics([*CONSUMED, *PRODUCED, *(dlq_topic(t) for t in CONSUMED)])
    parts = components(deps, broker, delivery_policy=delivery_policy, group_prefix=group_prefix)
    return run_components(parts, stop)


def run_relay(settings: Settings, stop: threading.Event) -> int:
    """`tenin relay chat_agent`: the outbox relay alone, until `stop` is set."""
    deps = worker_dependencies(settings)
    broker = deps.broker()
    broker.ensure_topics(list(PRODUCED))
    return run_components({"outbox-relay": outbox_relay(deps, broker).run}, stop)
