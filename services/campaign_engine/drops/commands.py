"""Queueing, cancelling and estimating drops (docs/interfaces.md § Campaign drops).

Queueing writes the drop and its `drop.queued` event (the sending rules chat_agent keeps)
in one transaction; cancelling marks it and announces `drop.cancelled`, so chat_agent
cancels the pushes it has not sent and the runner stops asking.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.campaign_engine.decisions.policy import in_holdout
from services.campaign_engine.drops.eligible import all_eligible
from services.campaign_engine.drops.progress import message_cost_of
from services.campaign_engine.drops.schemas import DropEstimate, DropIn
from services.campaign_engine.features.store import FeatureSource
from services.campaign_engine.models import PRODUCER, Campaign, Coupon, Drop, Outbox
from shared.events import DropCancelled, DropQueued, QuietHours
from shared.ids import random_uuid
from shared.outbox import add_event


class DropConflict(Exception):
    """The drop cannot be queued or cancelled in the current state."""


def queue_drop(session: Session, campaign: Campaign, body: DropIn, now: datetime) -> Drop:
    """Add a queued drop of an active campaign and its `drop.queued` event."""
    if campaign.status != "active":
        raise DropConflict(f"the campaign is {campaign.status}; only an active one can drop")
    quiet = body.quiet_hours.model_dump() if body.quiet_hours else None
    drop = Drop(
        drop_id=str(random_uuid()),
        campaign_id=campaign.campaign_id,
        status="queued",
        audience=body.audience.model_dump(exclude_none=True) if body.audience else None,
        max_messages=body.max_messages,
        send_after=body.send_after,
        quiet_hours=quiet,
        members=0,
        created_at=now,
        updated_at=now,
    )
    session.add(drop)
    add_event(
        session,
        Outbox,
        "drop.queued",
        DropQueued(
            drop_id=drop.drop_id,
            campaign_id=campaign.campaign_id,
            max_messages=body.max_messages,
            send_after=body.send_after,
            quiet_hours=QuietHours.model_validate(quiet) if quiet else None,
        ),
        key=campaign.campaign_id,
        producer=PRODUCER,
    )
    return drop


def cancel_drop(session: Session, drop: Drop, now: datetime) -> None:
    """Cancel a drop that has not finished; cancelling twice changes nothing."""
    if drop.status == "cancelled":
        return
    if drop.status == "failed":
        raise DropConflict("the drop has failed; there is nothing to cancel")
    drop.status, drop.cancelled_at, drop.updated_at = "cancelled", now, now
    drop.lease_owner = drop.lease_until = None
    add_event(
        session,
        Outbox,
        "drop.cancelled",
        DropCancelled(drop_id=drop.drop_id, campaign_id=drop.campaign_id),
        key=drop.campaign_id,
        producer=PRODUCER,
    )


def estimate_drop(
    session: Session,
    campaign: Campaign,
    body: DropIn,
    *,
    features: FeatureSource | None,
    holdout_key: bytes,
    now: datetime,
) -> DropEstimate:
    """A dry run: eligible followers, holdout, coupons and messages the drop would send."""
    if campaign.status != "active":
        raise DropConflict(f"the campaign is {campaign.status}; only an active one can drop")
    audiences = [campaign.audience, body.audience.model_dump() if body.audience else None]
    eligible = holdout = 0
    for follower in all_eligible(session, audiences, features=features, now=now):
        eligible += 1
        if in_holdout(
            follower.customer_id, campaign.campaign_id, holdout_key, campaign.holdout_pct
        ):
            holdout += 1
    coupons = eligible - holdout
    left = coupons_left(session, campaign)
    if left is not None:
        coupons = min(coupons, left)
    if body.max_messages is not None:
        coupons = min(coupons, body.max_messages)
    cost = message_cost_of(campaign)
    return DropEstimate(
        campaign_id=campaign.campaign_id,
        eligible=eligible,
        holdout=holdout,
        expected_coupons=coupons,
        expected_messages=coupons,
        message_cost=cost,
        expected_message_cost=coupons * cost,
        broadcast_messages=eligible,
        broadcast_cost=eligible * cost,
    )


def coupons_left(session: Session, campaign: Campaign) -> int | None:
    """Coupons the campaign's `max_coupons` still allows (None: no such budget)."""
    limit = (campaign.budget or {}).get("max_coupons")
    if limit is None:
        return None
    issued = session.scalar(
        select(func.count(Coupon.code)).where(Coupon.campaign_id == campaign.campaign_id)
    )
    return max(0, int(limit) - int(issued or 0))
