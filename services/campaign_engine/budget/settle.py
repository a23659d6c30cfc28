"""Settling a coupon's budget usage when it is redeemed (+1) or its redemption voided (-1).

One step serves both: the redemption is logged for training (redemptions_seen, the
label of the decision log), the money reserved at issue is settled to the real discount
(or given back by a void), the coupon's redemption is counted in the campaign's usage and
the customer's features, and a redemption that uses up `max_redemptions` is announced.
Each event applies once; a transaction's redemption is counted once however often it is
reported, and a void only undoes a counted redemption.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import structlog
from sqlalchemy.orm import Session

from services.campaign_engine import metrics
from services.campaign_engine.budget.exhaustion import announce_exhausted, exhausted_budgets
from services.campaign_engine.budget.reservation_store import ReservationStore
from services.campaign_engine.features.markers import Markers, effect_key, once
from services.campaign_engine.features.store import FeatureUpdates
from services.campaign_engine.models import (
    UPDATES_CONSUMER,
    Campaign,
    Coupon,
    ProcessedEvent,
    RedemptionSeen,
)
from shared.coupons import CodeRejected, normalize_code
from shared.db import unit_of_work
from shared.events import CouponRedeemed, CouponVoided, Envelope, payload_as
from shared.idempotency import first_time

log = structlog.get_logger(__name__)

Sign = Literal[1, -1]
REDEEMED: Sign = 1
VOIDED: Sign = -1


def settle(
    envelope: Envelope,
    sign: Sign,
    *,
    sessions: Callable[[], Session],
    reservations: ReservationStore,
    features: FeatureUpdates,
    markers: Markers,
) -> None:
    """Apply a coupon.redeemed (sign +1) or coupon.voided (sign -1) event once."""
    voiding = sign == VOIDED
    p = payload_as(envelope, CouponVoided) if voiding else payload_as(envelope, CouponRedeemed)
    code = canonical_code(p.code)
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, UPDATES_CONSUMER, envelope.event_id):
            return
        seen = session.get(RedemptionSeen, (code, p.transaction_id))
        if seen is not None and seen.voided == voiding:
            return  # this transaction's redemption is already counted (or already voided)
        if seen is None:
            seen = RedemptionSeen(
                coupon_code=code,
                transaction_id=p.transaction_id,
                redeemed_at=envelope.occurred_at,
                voided=voiding,
                discount=p.discount,
            )
            session.add(seen)
            if voiding:
                log.warning("void_without_redemption", customer_id=p.customer_id, code=code)
                return
        elif voiding:
            seen.voided = True
        else:
            seen.voided, seen.redeemed_at, seen.discount = False, envelope.occurred_at, p.discount
        coupon = session.get(Coupon, code)
        if coupon is not None:
            # The face value reserved at issue is settled to the real discount, or given back.
            money = sign * (seen.discount - coupon.face_value)
            _apply_usage(session, reservations, coupon, str(envelope.event_id), sign, money)
        if p.customer_id:
            customer_id = p.customer_id
            count = features.record_void if voiding else features.record_redemption
            once(markers, effect_key(envelope.event_id), lambda: count(customer_id))
    metrics.UPDATES.labels(envelope.type, "applied").inc()


def canonical_code(code: str) -> str:
    """Codes are stored in canonical form; the tracker may pass one on as it was typed."""
    try:
        return normalize_code(code)
    except CodeRejected:
        return code


def _apply_usage(
    session: Session,
    reservations: ReservationStore,
    coupon: Coupon,
    event_id: str,
    sign: Sign,
    money: int,
) -> None:
    usage = reservations.apply_usage(coupon.campaign_id, event_id, sign, money)
    if usage is None or sign == VOIDED:
        return  # not seeded yet (the seed reads this from the database), or nothing to announce
    campaign = session.query(Campaign).filter_by(campaign_id=coupon.campaign_id).one_or_none()
    if campaign is not None:
        announce_exhausted(
            session,
            campaign.campaign_id,
            [b for b in exhausted_budgets(campaign, usage) if b == "max_redemptions"],
        )
