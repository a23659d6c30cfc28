"""`tenin worker campaign_engine`: the decision consumer, the update consumer, the relay
(or `tenin relay campaign_engine`: the relay alone, with TENIN_OUTBOX_RELAY=process).

Offer requests and the events that keep features and budgets current run in separate
consumer groups, so a burst of sales never delays a customer waiting for an offer. Which
group handles which event type is in handlers.py.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import structlog

from services.campaign_engine.bootstrap import Engine, bootstrap
from services.campaign_engine.budget.reservation_store import ReservationsUnavailable
from services.campaign_engine.budget.seeding import reconcile_on_start
from services.campaign_engine.campaigns.overdue import overdue_closer
from services.campaign_engine.drops.runner import DropRunner
from services.campaign_engine.handlers import (
    decision_batches,
    handlers,
    update_batches,
)
from services.campaign_engine.models import (
    DECISIONS_CONSUMER,
    UPDATES_CONSUMER,
    Outbox,
    ProcessedEvent,
)
from shared.bus import Broker, Message, broker_from_settings
from shared.config import Settings
from shared.consumer import BatchConsumerLoop, decode_envelope
from shared.consumer_pipelined import PipelinedBatchConsumerLoop, Prepare
from shared.dead_letters import DeadLetterSeal
from shared.events import (
    CAMPAIGN_EVENTS,
    COUPON_EVENTS,
    CUSTOMER_EVENTS,
    OFFER_DECISIONS,
    OFFER_REQUESTS,
    SALES_EVENTS,
    Envelope,
    dlq_topic,
)
from shared.outbox_relay import OutboxRelay, relays_in_workers, worker_relay
from shared.runtime import Component, run_components
from shared.table_stats import GrowthAnalyzer

log = structlog.get_logger(__name__)

DECISIONS_GROUP = DECISIONS_CONSUMER
UPDATES_GROUP = UPDATES_CONSUMER
CONSUMED = (OFFER_REQUESTS, CUSTOMER_EVENTS, SALES_EVENTS, COUPON_EVENTS)
PRODUCED = (OFFER_DECISIONS, CAMPAIGN_EVENTS)


# How the decisions group consumes (docs/architecture.md § Decisions): a poll of up to
# `batch_size` requests is decided at once; its offsets are committed without waiting (as
# every loop's), since a redelivered request finds its decision already stored. A full poll
# is written while the next is decided, so a request waits ~1.4 polls' time from poll to
# commit: 60 kept p99 at 69-97 ms from 1,260 decisions/s, where 80 gave 83-128 ms, with no
# throughput lost to the noise (bench/decision_latency.py: docs/architecture.md § Hot paths).
DECISION_LOOP: dict[str, Any] = {"batch_size": 60}
# Updates a poll at a time too: a drop's delivery reports in one transaction per poll.
# Read in bulk (shared/bus/profiles.BULK_FETCH): no customer waits on them; a consent
# change a moment behind the ask that follows it is the ask's to vouch for
# (docs/architecture.md § Consent across topics).
UPDATES_LOOP: dict[str, Any] = {"bulk": True}
# What a drop grows from empty, analyzed as it does (shared/table_stats.py).
DROP_GROWN_TABLES = ("campaign_engine.drop_members", "campaign_engine.decisions")


def components(
    engine: Engine,
    broker: Broker,
    *,
    groups: tuple[str, str] = (DECISIONS_GROUP, UPDATES_GROUP),
    request_topics: Sequence[str] = (OFFER_REQUESTS,),
    update_topics: Sequence[str] = (CUSTOMER_EVENTS, SALES_EVENTS, COUPON_EVENTS),
    decide: Prepare[Envelope] | None = None,
    decoder: Callable[[Message], Envelope] = decode_envelope,
) -> dict[str, Component]:
    """The worker's threads: two consumer loops, the drop runner and, unless relay processes
    publish the outbox (TENIN_OUTBOX_RELAY=process), the outbox relay (tests rename topics;
    the decision bench times `decide` and `decoder`, which default to the worker's own)."""
    registry = handlers(engine)
    attempts = engine.settings.consumer_max_attempts
    seal = DeadLetterSeal.for_settings(engine.settings)
    # Offer requests are decided a poll at a time, by a few members of the decisions
    # group in this process (docs/architecture.md § Decisions). A full poll (a backlog) is
    # written and committed on the loop's writer thread while the next is read and decided
    # (shared/consumer_pipelined.py), and the relay publishes its decisions; any other poll
    # is written at once and the loop publishes its decisions itself (a customer waits for
    # them; docs/architecture.md § Hot paths). With relay processes, they publish it all,
    # woken by the commit's NOTIFY.
    decide = decide or decision_batches(engine)
    relay = (
        outbox_relay(engine, broker, [*request_topics, *update_topics])
        if relays_in_workers(engine.settings)
        else None
    )
    decisions = {
        f"decisions-{n}" if n else "decisions": PipelinedBatchConsumerLoop(
            broker,
            groups[0],
            list(request_topics),
            decide,
            decoder=decoder,
            max_attempts=attempts,
            seal=seal,
            publish_eagerly=relay,
            # On SQLite one transaction's locks would hold up the other's commit.
            overlap=engine.settings.effective_database_url.startswith("postgresql"),
            **DECISION_LOOP,
        ).run
        for n in range(engine.settings.decision_threads)
    }
    updates = BatchConsumerLoop(
        broker,
        groups[1],
        list(update_topics),
        update_batches(registry, engine.sessions),
        max_attempts=attempts,
        seal=seal,
        **UPDATES_LOOP,
    )

    auto_end = engine.settings.campaign_auto_end_days
    overdue = (
        {
            "overdue_campaigns": overdue_closer(
                engine.sessions, engine.clock, timedelta(days=auto_end)
            )
        }
        if auto_end
        else {}
    )
    return {
        **decisions,
        "updates": updates.run,
        **({"outbox_relay": relay.run} if relay is not None else {}),
        # Campaigns left active long after their window are ended (campaigns/overdue.py).
        **overdue,
        # Campaign drops: decides each eligible follower, a page at a time (drops/runner.py).
        "drops": DropRunner(
            engine.sessions,
            features=lambda: engine.features,
            decide=engine.decide_within,
            grown=GrowthAnalyzer(engine.sessions, DROP_GROWN_TABLES).added,
        ).run,
    }


def outbox_relay(engine: Engine, broker: Broker, consumed: Sequence[str] = CONSUMED) -> OutboxRelay:
    """The engine's relay (shared.outbox_relay.worker_relay), in a worker or a relay
    process."""
    return worker_relay(
        engine.sessions, Outbox, broker, engine.settings, ProcessedEvent, consumed=consumed
    )


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
    # What start-up loaded (modules, the model, campaigns) lives as long as the process:
    # keep the cyclic collector from scanning it again and again (~10% of a decision's
    # CPU, measured: docs/architecture.md § Hot paths).
    gc.freeze()


def run(settings: Settings, stop: threading.Event) -> int:
    """Run until `stop` is set (SIGTERM); returns the process exit code."""
    engine = bootstrap(settings, pre_ping=False)
    engine.on_redis()  # no Redis, no worker: budgets live there (RuntimeError without REDIS_URL)
    broker = broker_from_settings(engine.settings)
    prepare(engine, broker)
    return run_components(components(engine, broker), stop)


def run_relay(settings: Settings, stop: threading.Event) -> int:
    """`tenin relay campaign_engine`: the outbox relay alone, until `stop` is set."""
    engine = bootstrap(settings, pre_ping=False, pool_size=2)
    broker = broker_from_settings(engine.settings)
    broker.ensure_topics(list(PRODUCED))
    return run_components({"outbox_relay": outbox_relay(engine, broker).run}, stop)
