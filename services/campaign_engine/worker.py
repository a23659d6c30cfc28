"""`tenin worker campaign_engine`: the decision consumer, the update consumer, the relay.

Offer requests and the events that keep features and budgets current run in separate
consumer groups, so a burst of sales never delays a customer waiting for an offer.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import structlog

from services.campaign_engine.bootstrap import SERVICE, Engine, bootstrap
from services.campaign_engine.models import Outbox
from services.campaign_engine.reservations import ReservationsUnavailable
from services.campaign_engine.usage import reconcile_on_start
from shared.bus import Broker, broker_from_settings
from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.events import (
    CAMPAIGN_EVENTS,
    COUPON_EVENTS,
    CUSTOMER_EVENTS,
    OFFER_DECISIONS,
    OFFER_REQUESTS,
    SALES_EVENTS,
    dlq_topic,
)
from shared.outbox import OutboxRelay
from shared.runtime import Component, run_components

log = structlog.get_logger(__name__)

DECISIONS_GROUP = f"{SERVICE}.decisions"
UPDATES_GROUP = f"{SERVICE}.updates"
CONSUMED = (OFFER_REQUESTS, CUSTOMER_EVENTS, SALES_EVENTS, COUPON_EVENTS)
PRODUCED = (OFFER_DECISIONS, CAMPAIGN_EVENTS)


def components(
    engine: Engine,
    broker: Broker,
    *,
    groups: tuple[str, str] = (DECISIONS_GROUP, UPDATES_GROUP),
    request_topics: Sequence[str] = (OFFER_REQUESTS,),
    update_topics: Sequence[str] = (CUSTOMER_EVENTS, SALES_EVENTS, COUPON_EVENTS),
) -> dict[str, Component]:
    """The worker's threads: two consumer loops and the outbox relay (tests rename topics)."""
    settings = engine.settings
    decisions = ConsumerLoop(
        broker,
        groups[0],
        list(request_topics),
        engine.decide,
        max_attempts=settings.consumer_max_attempts,
    )
    updates = ConsumerLoop(
        broker,
        groups[1],
        list(update_topics),
        engine.update,
        max_attempts=settings.consumer_max_attempts,
    )
    relay = OutboxRelay(
        engine.sessions, Outbox, broker.producer(), poll_seconds=settings.relay_poll_seconds
    )
    return {"decisions": decisions.run, "updates": updates.run, "outbox_relay": relay.run}


def prepare(engine: Engine, broker: Broker) -> None:
    """Before taking work: topics exist, the model loads, Redis agrees with the database."""
    broker.ensure_topics([*CONSUMED, *PRODUCED, *(dlq_topic(t) for t in CONSUMED)])
    log.info("model_ready", model_version=engine.scorer.model_version)
    try:
        with engine.sessions() as session:
            count = reconcile_on_start(session, engine.reservations, engine.clock())
        log.info("budgets_reconciled", campaigns=count)
    except ReservationsUnavailable as exc:
        # Still start: decisions answer "no coupon" until Redis is back, then seed lazily.
        log.error("budgets_not_reconciled_redis_unavailable", error=str(exc))


def run(settings: Settings, stop: threading.Event) -> int:
    """Run until `stop` is set (SIGTERM); returns the process exit code."""
    engine = bootstrap(settings)
    broker = broker_from_settings(engine.settings)
    prepare(engine, broker)
    return run_components(components(engine, broker), stop)
