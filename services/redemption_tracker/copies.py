"""The tracker's own copies of other services' facts, kept current from their events.

Campaigns (`campaign.*` snapshots), decisions (`offer.decided`: arm and coupon), customer
links (`customer.linked`, `customer.unlinked`) and deliveries (`coupon.delivered`). handlers.py says which
function applies which event type. Each event is applied in one unit of work by
`apply_once`: `first_time` records the event id per consumer group (so a redelivered
event changes nothing), then the effect. Copies are last-writer-wins by the event's
`occurred_at`, so an older snapshot arriving late never overwrites a newer one. Decisions
and deliveries of a campaign whose report is final are pruned by the relay
(reports/final.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from services.redemption_tracker import metrics
from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import (
    Campaign,
    CampaignUsage,
    CustomerLink,
    Decision,
    Delivery,
    ProcessedEvent,
)
from services.redemption_tracker.sql import bulk, insert_ignore
from shared.consumer import PoisonMessage
from shared.coupons import UnknownCode, normalize_code
from shared.db import unit_of_work
from shared.events import (
    CampaignStatusChanged,
    CouponDelivered,
    CustomerLinked,
    CustomerUnlinked,
    Envelope,
    OfferDecided,
    payload_as,
)
from shared.idempotency import first_time

log = structlog.get_logger(__name__)

Copier = Callable[[Session, Envelope], None]


def share_terms(revenue_share: Mapping[str, Any]) -> tuple[str, int]:
    """(basis, basis points) of a snapshot's revenue_share; pct is a percentage (5 = 5%)."""
    basis = str(revenue_share.get("basis") or "attributed")
    if basis not in ("attributed", "incremental"):
        basis = "attributed"
    pct = float(revenue_share.get("pct") or 0)
    return basis, max(0, min(10_000, round(pct * 100)))


def apply_campaign_snapshot(s: Session, envelope: Envelope) -> None:
    """Upsert the campaign copy from a `campaign.*` snapshot (newer snapshots win)."""
    c = payload_as(envelope, CampaignStatusChanged).campaign
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
        "message_cost": c.message_cost,
        "pacing": c.pacing,
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
    """Keep the decision: the arm for lift, the coupon for issued counts and validity.

    A decision for no campaign (arm `none`: no offer, no code) is not kept: every report
    reads a campaign's decisions and the till finds one by its code, so nothing would
    read it (the event is still recorded as applied, by `apply_once`).
    """
    d = payload_as(envelope, OfferDecided)
    if d.campaign_id is None:
        return
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
    link = payload_as(envelope, CustomerLinked)
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


def unlink_customer(s: Session, envelope: Envelope) -> None:
    """The member moved away from this customer: its sales stop counting for them.

    Only a link to that customer, made before the unlink, is removed: the member's new
    link (`customer.linked`, keyed by the new customer, so it may arrive first) stays
    (docs/interfaces.md § Account link).
    """
    unlink = payload_as(envelope, CustomerUnlinked)
    s.execute(
        delete(CustomerLink).where(
            CustomerLink.member_hash == unlink.member_hash,
            CustomerLink.customer_id == unlink.customer_id,
            CustomerLink.linked_at <= envelope.occurred_at,
        )
    )


def record_delivery(s: Session, envelope: Envelope) -> None:
    """A coupon delivered to the customer (counts as delivered once per code)."""
    delivered = payload_as(envelope, CouponDelivered)
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


def apply_once(tracker: Tracker, consumer: str, copy: Copier, envelope: Envelope) -> bool:
    """Apply one event to the copies effectively once; False when it was seen before."""
    with unit_of_work(tracker.sessions) as s:
        if not first_time(s, ProcessedEvent, consumer, envelope.event_id):
            return False
        copy(s, envelope)
    metrics.EVENTS_APPLIED.labels(envelope.type).inc()
    log.debug("event_applied", type=envelope.type, event_id=str(envelope.event_id))
    return True
