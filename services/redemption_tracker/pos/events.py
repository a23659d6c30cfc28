"""The events the POS feed publishes, as outbox rows written in the batch's own commit.

`coupon.redeemed` for every coupon redeemed on a new transaction; one
`coupon.redemption_rejected` per batch and (reason, campaign, customer) with a `count`,
so a batch of 1,000 junk codes is one event, not 1,000; `sale.recorded` for a sale by a
linked customer; `coupon.voided` for each redemption a void reverses
(docs/interfaces.md § Events).

A batch's events are built as drafts (type, key, payload) and encoded together by
`shared.outbox.outbox_rows`: the payloads of one type are validated against their
registered schema in one call, and each envelope is serialised directly, the very bytes
`shared.events.encode(make_event(...))` gives, without building an `Envelope` model per
event (docs/architecture.md § Hot paths).
"""

from __future__ import annotations

from collections.abc import Iterable

from services.redemption_tracker.models import Redemption
from services.redemption_tracker.pos.batch import BatchTx, Outcome
from shared.outbox import Draft


def coupon_redeemed(t: BatchTx, o: Outcome, store_id: str) -> Draft:
    """`coupon.redeemed` for a redeemed coupon."""
    assert o.campaign is not None
    return Draft(
        "coupon.redeemed",
        o.customer_id or o.code or t.tx.transaction_id,
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
    )


RejectionKey = tuple[str | None, str | None, str | None]  # reason, campaign_id, customer_id


def rejection_key(o: Outcome) -> RejectionKey:
    """What a batch's rejections are grouped by."""
    return (o.reason, o.campaign_id, o.customer_id)


def coupon_rejections(
    groups: Iterable[list[tuple[BatchTx, Outcome]]], store_id: str
) -> list[Draft]:
    """One `coupon.redemption_rejected` per group: its first coupon and the group's size."""
    drafts = []
    for group in groups:
        t, o = group[0]
        drafts.append(
            Draft(
                "coupon.redemption_rejected",
                o.customer_id or o.code or o.raw or t.tx.transaction_id,
                {
                    "code": o.code or o.raw,
                    "reason": o.reason,
                    "customer_id": o.customer_id,
                    "campaign_id": o.campaign_id,
                    "transaction_id": t.tx.transaction_id,
                    "store_id": store_id,
                    "count": len(group),
                },
            )
        )
    return drafts


def sale_recorded(t: BatchTx, customer_id: str, store_id: str) -> Draft:
    """`sale.recorded`: a linked customer's sale, for the engine's customer features."""
    return Draft(
        "sale.recorded",
        customer_id,
        {
            "customer_id": customer_id,
            "transaction_id": t.tx.transaction_id,
            "store_id": store_id,
            "total": t.tx.total,
            "occurred_at": t.tx.occurred_at,
            "categories": sorted({i.category for i in t.tx.items if i.category}),
        },
    )


def coupon_voided(r: Redemption) -> Draft:
    """`coupon.voided`: a redemption reversed by a void (the code is free again)."""
    return Draft(
        "coupon.voided",
        r.customer_id or r.code,
        {
            "code": r.code,
            "customer_id": r.customer_id,
            "campaign_id": r.campaign_id,
            "offer_id": r.offer_id,
            "transaction_id": r.transaction_id,
            "store_id": r.store_id,
            "discount": r.discount,
        },
    )
