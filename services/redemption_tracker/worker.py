"""`tenin worker redemption_tracker`: consumers, the outbox relay (which also prunes the copies
of campaigns whose report is final) and the period closer (which also freezes those reports).
`tenin relay redemption_tracker` runs the relay alone (TENIN_OUTBOX_RELAY=process)."""

from __future__ import annotations

import threading

import structlog

from services.redemption_tracker.bootstrap import Tracker, bootstrap, tune_gc
from services.redemption_tracker.handlers import COPIES, event_handler, pos_transaction_handler
from services.redemption_tracker.models import Outbox, ProcessedEvent
from services.redemption_tracker.pos.topic import decode_pos_message
from services.redemption_tracker.reports.final import (
    FINAL_DECISIONS,
    FINAL_DELIVERIES,
    freeze_all,
)
from services.redemption_tracker.reports.periods import close_all
from shared.bus import Broker, broker_from_settings
from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.db import make_engine
from shared.dead_letters import DeadLetterSeal
from shared.events import (
    CAMPAIGN_EVENTS,
    COUPON_EVENTS,
    CUSTOMER_EVENTS,
    OFFER_DECISIONS,
    POS_TRANSACTIONS,
    SALES_EVENTS,
    dlq_topic,
)
from shared.outbox_relay import OutboxRelay, relays_in_workers, worker_relay
from shared.retention import pruner
from shared.runtime import Component, run_components

log = structlog.get_logger(__name__)

GROUP_PREFIX = "redemption_tracker"
# One consumer group per source topic, so a slow stream never holds up another.
COPY_GROUPS = {
    "decisions": OFFER_DECISIONS,
    "campaigns": CAMPAIGN_EVENTS,
    "customers": CUSTOMER_EVENTS,
    "coupons": COUPON_EVENTS,
}
CLOSE_EVERY_S = 600.0


def period_closer(tracker: Tracker, every_s: float = CLOSE_EVERY_S) -> Component:
    """Book the monthly closes of incremental-basis campaigns, then freeze the reports of
    ended campaigns past their last close (both idempotent, so any cadence)."""

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                close_all(tracker)
            except Exception:
                log.exception("period_close_failed")
            try:
                freeze_all(tracker)
            except Exception:
                log.exception("report_freeze_failed")
            stop.wait(every_s)

    return run


def outbox_relay(tracker: Tracker, broker: Broker) -> OutboxRelay:
    """The worker's relay (shared.outbox_relay.worker_relay), which also prunes the copies of
    decisions and deliveries of campaigns whose report is final (reports/final.py)."""
    days = tracker.settings.tracker_copy_retention_days
    return worker_relay(
        tracker.sessions,
        Outbox,
        broker,
        tracker.settings,
        ProcessedEvent,
        consumed=[*COPY_GROUPS.values(), POS_TRANSACTIONS],
        also=[
            pruner(tracker.sessions, FINAL_DECISIONS, days),
            pruner(tracker.sessions, FINAL_DELIVERIES, days),
        ],
    )


def components(
    tracker: Tracker, broker: Broker, prefix: str = GROUP_PREFIX
) -> dict[str, Component]:
    """Everything the worker runs, by name; consumer groups are `<prefix>.<purpose>`."""
    attempts = tracker.settings.consumer_max_attempts
    seal = DeadLetterSeal.for_settings(tracker.settings)
    out: dict[str, Component] = {}
    for purpose, topic in COPY_GROUPS.items():
        group = f"{prefix}.{purpose}"
        loop = ConsumerLoop(
            broker,
            group,
            [topic],
            event_handler(tracker, group),
            max_attempts=attempts,
            seal=seal,
            handles=COPIES.keys(),  # any other type is passed over undecoded
        )
        out[group] = loop.run
    pos = ConsumerLoop(
        broker,
        f"{prefix}.pos",
        [POS_TRANSACTIONS],
        pos_transaction_handler(tracker),
        decoder=decode_pos_message,
        max_attempts=attempts,
        seal=seal,
    )
    out[f"{prefix}.pos"] = pos.run
    if relays_in_workers(tracker.settings):
        out[f"{prefix}.outbox"] = outbox_relay(tracker, broker).run
    out[f"{prefix}.period_close"] = period_closer(tracker)
    return out


def run(settings: Settings, stop: threading.Event) -> int:
    """Run until `stop` is set (SIGTERM); returns the exit code."""
    # No ping per checkout: the loops retry on a dropped connection (shared.db.make_engine).
    tracker = bootstrap(
        settings,
        engine=make_engine(settings.effective_database_url, pool_size=10, pre_ping=False),
    )
    broker = broker_from_settings(tracker.settings)
    sources = [*COPY_GROUPS.values(), POS_TRANSACTIONS]
    broker.ensure_topics([*sources, SALES_EVENTS, *(dlq_topic(t) for t in sources)])
    parts = components(tracker, broker)
    tune_gc()
    return run_components(parts, stop)


def run_relay(settings: Settings, stop: threading.Event) -> int:
    """`tenin relay redemption_tracker`: the outbox relay alone, until `stop` is set."""
    tracker = bootstrap(
        settings, engine=make_engine(settings.effective_database_url, pool_size=2, pre_ping=False)
    )
    broker = broker_from_settings(tracker.settings)
    broker.ensure_topics([SALES_EVENTS])
    return run_components({f"{GROUP_PREFIX}.outbox": outbox_relay(tracker, broker).run}, stop)
