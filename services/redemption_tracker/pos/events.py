"""The events the POS feed publishes, as outbox rows written in the batch's own commit.

`coupon.redeemed` for every coupon redeemed on a new transaction; one
`coupon.redemption_rejected` per batch and (reason, campaign, customer) with a `count`,
so a batch of 1,000 junk codes is one event, not 1,000; `sale.recorded` for a sale by a
linked customer; `coupon.voided` for each redemption a void reverses
(docs/interfaces.md § Events).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.redemption_tracker.models import Redemption
from services.redemption_tracker.pos.batch import BatchTx, Outcome
from shared.db import utcnow
from shared.events import TOPIC_OF_TYPE, Strict, encode, make_event


def outbox_row(
    event_type: str, payload: Strict | dict[str, Any], *, key: str, producer: str
) -> dict[str, Any]:
    """A validated event as an outbox row, for a bulk insert (shared.outbox.add_event's row)."""
    envelope = make_event(event_type, payload, key=key, producer=producer)
    return {
        "event_id": envelope.event_id,
        "topic": TOPIC_OF_TYPE[event_type],
        "key": key,
        "body": encode(envelope).decode("utf-8"),
        "created_at": utcnow(),
        "sent_at": None,
    }


def coupon_redeemed(t: BatchTx, o: Outcome, store_id: str, producer: str) -> dict[str, Any]:
    """`coupon.redeemed` for a redeemed coupon."""
    assert o.campaign is not None
    return outbox_row(
        "coupon.redeemed",
        {
            "code": o.code,
            "customer_id": o.customer_id,
            "campaign_id": o.campaign.campaign_id,
            "offer_id": o.offer_id,
            "transaction_id": t.tx.transaction_id,
            "store_id": store_id,
            "discount": o.discount,
            "basket_total": t.tx.total,
        },
        key=o.customer_id or o.code or t.tx.transaction_id,
        producer=producer,
    )


RejectionKey = tuple[str | None, str | None, str | None]  # reason, campaign_id, customer_id


def rejection_key(o: Outcome) -> RejectionKey:
    """What a batch's rejections are grouped by."""
    return (o.reason, o.campaign_id, o.customer_id)


def coupon_rejections(
    groups: Iterable[list[tuple[BatchTx, Outcome]]], store_id: str, producer: str
) -> list[dict[str, Any]]:
    """One `coupon.redemption_rejected` per group: its first coupon and the group's size."""
    rows = []
    for group in groups:
        t, o = group[0]
        rows.append(
            outbox_row(
                "coupon.redemption_rejected",
                {
                    "code": o.code or o.raw,
                    "reason": o.reason,
                    "customer_id": o.customer_id,
                    "campaign_id": o.campaign_id,
                    "transaction_id": t.tx.transaction_id,
                    "store_id": store_id,
                    "count": len(group),
                },
                key=o.customer_id or o.code or o.raw or t.tx.transaction_id,
                producer=producer,
            )
        )
    return rows


def sale_recorded(t: BatchTx, customer_id: str, store_id: str, producer: str) -> dict[str, Any]:
    """`sale.recorded`: a linked customer's sale, for the engine's customer features."""
    return outbox_row(
        "sale.recorded",
        {
            "customer_id": customer_id,
            "transaction_id": t.tx.transaction_id,
            "store_id": store_id,
            "total": t.tx.total,
            "occurred_at": t.tx.occurred_at,
            "categories": sorted({i.category for i in t.tx.items if i.category}),
        },
        key=customer_id,
        producer=producer,
    )


def coupon_voided(r: Redemption, producer: str) -> dict[str, Any]:
    """`coupon.voided`: a redemption reversed by a void (the code is free again)."""
    return outbox_row(
        "coupon.voided",
        {
            "code": r.code,
            "customer_id": r.customer_id,
            "campaign_id": r.campaign_id,
            "offer_id": r.offer_id,
            "transaction_id": r.transaction_id,
            "store_id": r.store_id,
            "discount": r.discount,
        },
        key=r.customer_id or r.code,
        producer=producer,
    )
