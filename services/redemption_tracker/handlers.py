"""The registry: every message the tracker consumes, and the function that applies it.

Events (docs/interfaces.md § Events) keep the tracker's copies current (copies.py), each
applied once per consumer group (worker.COPY_GROUPS: one group per source topic):

| event type | applied by |
|---|---|
| `campaign.activated`, `campaign.paused`, `campaign.ended` | `apply_campaign_snapshot` |
| `offer.decided` | `record_decision` |
| `customer.linked` | `link_customer` |
| `customer.unlinked` | `unlink_customer` |
| `coupon.delivered` | `record_delivery` |

Any other type on those topics is skipped and not recorded: the other `customer.*`
events, our own `coupon.redeemed|redemption_rejected|voided`, and
`campaign.budget_exhausted`, the engine's issuing budget (the tracker enforces the
redemption budgets itself).

The `pos.transactions` topic carries raw transactions, not events: its messages are
decoded by `pos.topic.decode_pos_message` and ingested by `pos_transaction_handler`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.copies import (
    Copier,
    apply_campaign_snapshot,
    apply_once,
    link_customer,
    record_decision,
    record_delivery,
    unlink_customer,
)
from services.redemption_tracker.pos.topic import PosMessage, ingest_streamed
from shared.consumer import Handler, route_by_type
from shared.events import Envelope

COPIES: Mapping[str, Copier] = {
    "campaign.activated": apply_campaign_snapshot,
    "campaign.paused": apply_campaign_snapshot,
    "campaign.ended": apply_campaign_snapshot,
    "offer.decided": record_decision,
    "customer.linked": link_customer,
    "customer.unlinked": unlink_customer,
    "coupon.delivered": record_delivery,
}


def handlers(tracker: Tracker, consumer: str) -> dict[str, Handler]:
    """Event type → handler; `consumer` (the group id) is where applied event ids go."""

    def once(copy: Copier) -> Handler:
        def handle(envelope: Envelope) -> None:
            apply_once(tracker, consumer, copy, envelope)

        return handle

    return {event_type: once(copy) for event_type, copy in COPIES.items()}


def event_handler(tracker: Tracker, consumer: str) -> Handler:
    """What a copy group's ConsumerLoop calls for each envelope."""
    return route_by_type(handlers(tracker, consumer))


def handle_event(tracker: Tracker, consumer: str, envelope: Envelope) -> bool:
    """Apply one event as group `consumer` would; False when it is skipped or seen before."""
    copy = COPIES.get(envelope.type)
    return copy is not None and apply_once(tracker, consumer, copy, envelope)


def pos_transaction_handler(tracker: Tracker) -> Callable[[PosMessage], None]:
    """`pos.transactions`: one streamed transaction, ingested like a one-transaction batch."""
    return partial(ingest_streamed, tracker)
