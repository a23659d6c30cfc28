"""Event handlers that keep the tracker's own copies current.

Each applies one event in one unit of work: `first_time` records the event id (so a
redelivered event changes nothing), then the effect. Copies are last-writer-wins by the
event's `occurred_at`, so an older snapshot arriving late never overwrites a newer one.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.redemption_tracker import metrics
from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.dbutil import bulk, insert_ignore
from services.redemption_tracker.models import (
    Campaign,
    CampaignUsage,
    CustomerLink,
    Decision,
    Delivery,
    ProcessedEvent,
)
from shared.consumer import PoisonMessage
from shared.coupons import UnknownCode, normalize_code
from shared.db import unit_of_work
from shared.events import (
    CampaignStatusChanged,
    CouponDelivered,
    CustomerLinked,
    Envelope,
    OfferDecided,
    parse_payload,
)
from shared.idempotency import first_time

log = structlog.get_logger(__name__)

CAMPAIGN_TYPES = ("campaign.activated", "campaign.paused", "campaign.ended")


def share_terms(revenue_share: dict[str, object]) -> tuple[str, int]:
    """(basis, basis points) of a snapshot's revenue_share; pct is a percentage (5 = 5%)."""
    basis = str(revenue_share.get("basis") or "attributed")
    if basis not in ("attributed", "incremental"):
        basis = "attributed"
    pct = float(revenue_share.get("pct") or 0)  # type: ignore[arg-type]
    return basis, max(0, min(10_000, round(pct * 100)))


def apply_campaign_snapshot(s: Session, envelope: Envelope) -> None:
    """Upsert the campaign copy from a `campaign.*` snapshot (newer snapshots win)."""
    snap = parse_payload(envelope)
    assert isinstance(snap, CampaignStatusChanged)
    c = snap.campaign
    holder = s.execute(
        select(Campaign.campaign_id).where(
            Campaign.number == c.number, Campaign.campaign_id != c.campaign_id
        )
    ).scalar_one_or_none()
    if holder is not None:
        # Codes find their campaign by number: two campaigns with one number would make
        # every code of both ambiguous. A data error no retry can fix: dead-letter it.
        raise PoisonMessage(f"campaign number {c.number} already belongs to {holder}")
    basis, bp = share_terms(c.revenue_share)
    values = {
        "number": c.number,
        "name": c.name,
        "status": c.status,
        "starts_at": c.starts_at,
        "ends_at": c.ends_at,
        "offers": c.offers,
        "budget": c.budget,
        "holdout_pct": c.holdout_pct,
        "share_basis": basis,
        "share_bp": bp,
        "per_call_fee": c.per_call_fee,
        "snapshot_at": envelope.occurred_at,
    }
    created = bulk(
        s,
        insert_ignore(s, Campaign, ["campaign_id"]).returning(Campaign.campaign_id),
        [{"campaign_id": c.campaign_id, **values}],
    ).first()
    if created is None:
        s.execute(
            update(Campaign)
            .where(
                Campaign.campaign_id == c.campaign_id, Campaign.snapshot_at <= envelope.occurred_at
            )
            .values(**values)
        )
    bulk(
        s,
        insert_ignore(s, CampaignUsage, ["campaign_id"]),
        [{"campaign_id": c.campaign_id, "redemptions": 0, "discount_total": 0}],
    )


def _canonical(code: str) -> str:
    try:
        return normalize_code(code)
    except UnknownCode:
        return code


def record_decision(s: Session, envelope: Envelope) -> None:
    """Keep the decision: the arm for lift, the coupon for issued counts and validity."""
    d = parse_payload(envelope)
    assert isinstance(d, OfferDecided)
    coupon = d.coupon
    bulk(
        s,
        insert_ignore(s, Decision, ["request_id"]),
        [
            {
                "request_id": d.request_id,
                "customer_id": d.customer_id,
                "campaign_id": d.campaign_id,
                "offer_id": d.offer_id,
                "arm": d.arm,
                "code": _canonical(coupon.code) if coupon else None,
                "valid_from": coupon.valid_from if coupon else None,
                "expires_at": coupon.expires_at if coupon else None,
                "min_basket": coupon.min_basket if coupon else None,
                "discount": coupon.discount.model_dump() if coupon else None,
                "decided_at": envelope.occurred_at,
            }
        ],
    )


def link_customer(s: Session, envelope: Envelope) -> None:
    """Member hash → customer; the latest link of a member wins."""
    link = parse_payload(envelope)
    assert isinstance(link, CustomerLinked)
    created = bulk(
        s,
        insert_ignore(s, CustomerLink, ["member_hash"]).returning(CustomerLink.member_hash),
        [
            {
                "member_hash": link.member_hash,
                "customer_id": link.customer_id,
                "linked_at": envelope.occurred_at,
            }
        ],
    ).first()
    if created is None:
        s.execute(
            update(CustomerLink)
            .where(
                CustomerLink.member_hash == link.member_hash,
                CustomerLink.linked_at <= envelope.occurred_at,
            )
            .values(customer_id=link.customer_id, linked_at=envelope.occurred_at)
        )


def record_delivery(s: Session, envelope: Envelope) -> None:
    """A coupon delivered to the customer (counts as delivered once per code)."""
    delivered = parse_payload(envelope)
    assert isinstance(delivered, CouponDelivered)
    bulk(
        s,
        insert_ignore(s, Delivery, ["code"]),
        [
            {
                "code": _canonical(delivered.code),
                "campaign_id": delivered.campaign_id,
                "customer_id": delivered.customer_id,
                "channel": delivered.channel,
                "delivered_at": envelope.occurred_at,
            }
        ],
    )


HANDLERS: dict[str, Callable[[Session, Envelope], None]] = {
    **{t: apply_campaign_snapshot for t in CAMPAIGN_TYPES},
    "offer.decided": record_decision,
    "customer.linked": link_customer,
    "coupon.delivered": record_delivery,
}


def handle_event(tracker: Tracker, consumer: str, envelope: Envelope) -> bool:
    """Apply one event effectively once; False when it was ignored or seen before."""
    handler = HANDLERS.get(envelope.type)
    if handler is None:
        return False  # other types on these topics (our own coupon.redeemed, …)
    with unit_of_work(tracker.sessions) as s:
        if not first_time(s, ProcessedEvent, consumer, envelope.event_id):
            return False
        handler(s, envelope)
    metrics.EVENTS_APPLIED.labels(envelope.type).inc()
    log.debug("event_applied", type=envelope.type, event_id=str(envelope.event_id))
    return True


def event_handler(tracker: Tracker, consumer: str) -> Callable[[Envelope], None]:
    """The handler a ConsumerLoop calls for each decoded envelope."""

    def handle(envelope: Envelope) -> None:
        handle_event(tracker, consumer, envelope)

    return handle
