"""Every event type campaign_engine consumes, and the function that handles it.

| event type | handler | consumer group (worker.py) |
|---|---|---|
| offer.requested | decisions/decide.py `prepare_batch` (a whole poll at once: `decision_batches`) | campaign_engine.decisions |
| sale.recorded | modeling/spend.py `keep_sale`, then features/updates.py `record_sale` | campaign_engine.updates |
| customer.followed, .unfollowed, .linked, .unlinked, .opted_out, .opted_in | features/updates.py `record_customer_event` | campaign_engine.updates |
| coupon.redeemed, coupon.voided | budget/settle.py `settle` (+1, -1) | campaign_engine.updates |
| coupon.delivered, coupon.delivery_failed | drops/deliveries.py `record_drop_deliveries` (a whole poll's at once: `update_batches`) | campaign_engine.updates |

Any other type reaching a group (its topics carry types other services care about) is
counted in metrics.UPDATES as "ignored". Handlers are plain functions whose parameters
are their dependencies; each applies its event once (see the handler modules).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy.orm import Session

from services.campaign_engine import metrics
from services.campaign_engine.bootstrap import Engine
from services.campaign_engine.budget.reservation_store import ReservationStore
from services.campaign_engine.budget.settle import REDEEMED, VOIDED, settle
from services.campaign_engine.drops.deliveries import (
    record_drop_deliveries,
    record_drop_delivery,
)
from services.campaign_engine.features.markers import Markers
from services.campaign_engine.features.store import FeatureUpdates
from services.campaign_engine.features.updates import record_customer_event, record_sale
from services.campaign_engine.modeling.spend import keep_sale
from shared.consumer import Handler, route_by_type
from shared.consumer_pipelined import Prepare
from shared.events import Envelope

CUSTOMER_TYPES = (
    "customer.followed",
    "customer.unfollowed",
    "customer.linked",
    "customer.unlinked",
    "customer.opted_out",
    "customer.opted_in",
)
DECISION_TYPES = ("offer.requested",)
DROP_DELIVERY_TYPES = ("coupon.delivered", "coupon.delivery_failed")
UPDATE_TYPES = (
    "sale.recorded",
    *CUSTOMER_TYPES,
    "coupon.redeemed",
    "coupon.voided",
    *DROP_DELIVERY_TYPES,
)


def handlers(engine: Engine) -> dict[str, Handler]:
    """The registry: event type → handler, wired to the engine's dependencies."""

    def decide(envelope: Envelope) -> None:
        engine.decide(envelope)

    return {
        "offer.requested": decide,
        **update_handlers(
            sessions=engine.sessions,
            reservations=engine.reservations,
            features=engine.features,
            markers=engine.markers,
        ),
    }


def decision_batches(engine: Engine) -> Prepare[Envelope]:
    """The decision group's batch handler, in two steps (shared/consumer_pipelined.py): every
    offer request of a poll chosen at once, then written at once; any other type is counted
    ignored."""

    def prepare(envelopes: list[Envelope]) -> Callable[[], object]:
        requests = [e for e in envelopes if e.type in DECISION_TYPES]
        for other in envelopes:
            if other.type not in DECISION_TYPES:
                count_ignored(other)
        return engine.prepare_batch(requests) if requests else _nothing_to_write

    return prepare


def _nothing_to_write() -> None:
    return None


def update_batches(
    registry: Mapping[str, Handler], sessions: Callable[[], Session]
) -> Callable[[list[Envelope]], None]:
    """The updates group's batch handler: a poll's drop delivery reports recorded at once
    (one transaction, drops/deliveries.py), every other event by its own handler, in
    order. Reports touch only drop members, so recording them after the rest of the poll
    changes no other handler's outcome."""
    one_by_one = consumer_handler(registry, UPDATE_TYPES)

    def handle(envelopes: list[Envelope]) -> None:
        reports = [e for e in envelopes if e.type in DROP_DELIVERY_TYPES]
        for envelope in envelopes:
            if envelope.type not in DROP_DELIVERY_TYPES:
                one_by_one(envelope)
        if reports:
            record_drop_deliveries(reports, sessions=sessions)
            for report in reports:
                metrics.UPDATES.labels(report.type, "applied").inc()

    return handle


def update_handlers(
    *,
    sessions: Callable[[], Session],
    reservations: ReservationStore,
    features: FeatureUpdates,
    markers: Markers,
) -> dict[str, Handler]:
    """The handlers of the events that keep features, consent and budget usage current."""
    features_sale = functools.partial(
        record_sale, sessions=sessions, features=features, markers=markers
    )

    def sale(envelope: Envelope) -> None:
        keep_sale(envelope, sessions=sessions)  # idempotent on its own: safe to redo
        features_sale(envelope)

    customer = functools.partial(
        record_customer_event, sessions=sessions, features=features, markers=markers
    )
    settling = functools.partial(
        settle, sessions=sessions, reservations=reservations, features=features, markers=markers
    )
    return {
        "sale.recorded": _counted(sale),
        **{kind: _counted(customer) for kind in CUSTOMER_TYPES},
        "coupon.redeemed": functools.partial(settling, sign=REDEEMED),
        "coupon.voided": functools.partial(settling, sign=VOIDED),
        **dict.fromkeys(
            DROP_DELIVERY_TYPES,
            _counted(functools.partial(record_drop_delivery, sessions=sessions)),
        ),
    }


def consumer_handler(registry: Mapping[str, Handler], types: Sequence[str]) -> Handler:
    """One consumer group's handler: its types from the registry, any other counted ignored."""
    return route_by_type({kind: registry[kind] for kind in types}, otherwise=count_ignored)


def count_ignored(envelope: Envelope) -> None:
    """A type this group does not handle (another service's concern)."""
    metrics.UPDATES.labels(envelope.type, "ignored").inc()


def _counted(handler: Handler) -> Handler:
    """Count the event as applied once its handler returned (redeliveries included)."""

    def handle(envelope: Envelope) -> None:
        handler(envelope)
        metrics.UPDATES.labels(envelope.type, "applied").inc()

    return handle
