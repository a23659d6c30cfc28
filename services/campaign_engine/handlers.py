"""Event handlers: plain functions whose parameters are their dependencies.

`decide_offer` answers offer requests (services/campaign_engine/decisions.py). The rest
keep what the engine knows current: customer features for the model (sale.recorded,
customer.*), consent (customer.opted_out/opted_in) and budget usage (coupon.redeemed,
coupon.voided). Each applies an event once: the event id is recorded in the same
transaction as the database effect, and Redis effects carry their own once-marker, so a
redelivery after a failed commit does not count a sale or a redemption twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import structlog
from sqlalchemy.orm import Session

from services.campaign_engine import metrics
from services.campaign_engine.decisions import decide_offer
from services.campaign_engine.models import (
    Campaign,
    Coupon,
    Customer,
    ProcessedEvent,
    RedemptionSeen,
)
from services.campaign_engine.reservations import ReservationStore
from services.campaign_engine.usage import announce_exhausted, exhausted_budgets
from shared.coupons import CodeRejected, normalize_code
from shared.db import unit_of_work, utcnow
from shared.events import (
    CouponRedeemed,
    CouponVoided,
    CustomerFollowed,
    CustomerLinked,
    Envelope,
    SaleRecorded,
    parse_payload,
)
from shared.idempotency import first_time

__all__ = [
    "apply_update",
    "decide_offer",
    "record_customer_event",
    "record_redemption",
    "record_sale",
    "record_void",
]

log = structlog.get_logger(__name__)

CONSUMER = "campaign_engine.updates"


class FeatureUpdates(Protocol):
    def record_sale(
        self, customer_id: str, total: float, occurred_at: datetime, categories: list[str]
    ) -> None: ...

    def record_follow(self, customer_id: str, at: datetime) -> None: ...

    def mark_linked(self, customer_id: str) -> None: ...

    def record_redemption(self, customer_id: str) -> None: ...

    def record_void(self, customer_id: str) -> None: ...


class Markers(Protocol):
    """Once-markers for effects outside the database (Redis feature counters)."""

    def seen(self, key: str) -> bool: ...

    def mark(self, key: str) -> None: ...


def once(markers: Markers, key: str, effect: Callable[[], None]) -> None:
    """Run `effect` unless a marker says it already ran, then leave the marker."""
    if markers.seen(key):
        return
    effect()
    markers.mark(key)


def record_sale(
    envelope: Envelope,
    *,
    sessions: Callable[[], Session],
    features: FeatureUpdates,
    markers: Markers,
) -> None:
    """Count a linked customer's sale in their features."""
    sale: SaleRecorded = parse_payload(envelope)  # type: ignore[assignment]
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, CONSUMER, envelope.event_id):
            return
        once(
            markers,
            f"ce:fx:{envelope.event_id}",
            lambda: features.record_sale(
                sale.customer_id, sale.total, sale.occurred_at, list(sale.categories)
            ),
        )


def record_customer_event(
    envelope: Envelope,
    *,
    sessions: Callable[[], Session],
    features: FeatureUpdates,
    markers: Markers,
) -> None:
    """Consent, following and card linkage from customer.events."""
    payload = parse_payload(envelope)
    customer_id: str = payload.customer_id  # type: ignore[attr-defined]
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, CONSUMER, envelope.event_id):
            return
        customer = session.get(Customer, customer_id)
        if customer is None:
            customer = Customer(
                customer_id=customer_id, opted_out=False, following=True, linked=False
            )
            session.add(customer)
        customer.updated_at = utcnow()
        marker = f"ce:fx:{envelope.event_id}"
        if envelope.type == "customer.opted_out":
            customer.opted_out = True
        elif envelope.type == "customer.opted_in":
            customer.opted_out = False
        elif envelope.type == "customer.unfollowed":
            customer.following = False
        elif isinstance(payload, CustomerFollowed):
            customer.following, customer.language = True, payload.language
            once(markers, marker, lambda: features.record_follow(customer_id, envelope.occurred_at))
        elif isinstance(payload, CustomerLinked):
            customer.linked = True
            once(markers, marker, lambda: features.mark_linked(customer_id))


def record_redemption(
    envelope: Envelope,
    *,
    sessions: Callable[[], Session],
    reservations: ReservationStore,
    features: FeatureUpdates,
    markers: Markers,
) -> None:
    """A coupon was redeemed: log it for training, settle its budget usage, count it."""
    p: CouponRedeemed = parse_payload(envelope)  # type: ignore[assignment]
    code = _canonical(p.code)
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, CONSUMER, envelope.event_id):
            return
        seen = session.get(RedemptionSeen, (code, p.transaction_id))
        if seen is not None and not seen.voided:
            return  # this transaction's redemption is already counted
        if seen is None:
            session.add(
                RedemptionSeen(
                    coupon_code=code,
                    transaction_id=p.transaction_id,
                    redeemed_at=envelope.occurred_at,
                    voided=False,
                    discount=p.discount,
                )
            )
        else:
            seen.voided, seen.redeemed_at, seen.discount = False, envelope.occurred_at, p.discount
        coupon = session.get(Coupon, code)
        if coupon is not None:
            # The face value reserved at issue is settled to the real discount.
            _apply_usage(
                session,
                reservations,
                coupon,
                str(envelope.event_id),
                +1,
                p.discount - coupon.face_value,
            )
        if p.customer_id:
            customer_id = p.customer_id
            once(
                markers,
                f"ce:fx:{envelope.event_id}",
                lambda: features.record_redemption(customer_id),
            )
    metrics.UPDATES.labels("coupon.redeemed", "applied").inc()


def record_void(
    envelope: Envelope,
    *,
    sessions: Callable[[], Session],
    reservations: ReservationStore,
    features: FeatureUpdates,
    markers: Markers,
) -> None:
    """A redemption was voided: the coupon counts as outstanding again."""
    p: CouponVoided = parse_payload(envelope)  # type: ignore[assignment]
    code = _canonical(p.code)
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, CONSUMER, envelope.event_id):
            return
        seen = session.get(RedemptionSeen, (code, p.transaction_id))
        if seen is not None and seen.voided:
            return
        if seen is None:
            log.warning("void_without_redemption", customer_id=p.customer_id, code=code)
            session.add(
                RedemptionSeen(
                    coupon_code=code,
                    transaction_id=p.transaction_id,
                    redeemed_at=envelope.occurred_at,
                    voided=True,
                    discount=p.discount,
                )
            )
            return
        seen.voided = True
        coupon = session.get(Coupon, code)
        if coupon is not None:
            _apply_usage(
                session,
                reservations,
                coupon,
                str(envelope.event_id),
                -1,
                coupon.face_value - seen.discount,
            )
        if p.customer_id:
            customer_id = p.customer_id
            once(markers, f"ce:fx:{envelope.event_id}", lambda: features.record_void(customer_id))
    metrics.UPDATES.labels("coupon.voided", "applied").inc()


def _canonical(code: str) -> str:
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
    redeemed: int,
    money: int,
) -> None:
    usage = reservations.apply_usage(coupon.campaign_id, event_id, redeemed, money)
    if usage is None:
        return  # not seeded yet: the seed reads this redemption from the database
    campaign = session.query(Campaign).filter_by(campaign_id=coupon.campaign_id).one_or_none()
    if campaign is not None and redeemed > 0:
        announce_exhausted(
            session,
            campaign.campaign_id,
            [b for b in exhausted_budgets(campaign, usage) if b == "max_redemptions"],
        )


def apply_update(
    envelope: Envelope,
    *,
    sessions: Callable[[], Session],
    reservations: ReservationStore,
    features: FeatureUpdates,
    markers: Markers,
) -> None:
    """Route one customer, sales or coupon event to its handler; other types are not ours."""
    kind = envelope.type
    if kind == "sale.recorded":
        record_sale(envelope, sessions=sessions, features=features, markers=markers)
    elif kind.startswith("customer."):
        record_customer_event(envelope, sessions=sessions, features=features, markers=markers)
    elif kind == "coupon.redeemed":
        record_redemption(
            envelope,
            sessions=sessions,
            reservations=reservations,
            features=features,
            markers=markers,
        )
    elif kind == "coupon.voided":
        record_void(
            envelope,
            sessions=sessions,
            reservations=reservations,
            features=features,
            markers=markers,
        )
    else:
        metrics.UPDATES.labels(kind, "ignored").inc()
        return
    if kind.startswith(("sale.", "customer.")):
        metrics.UPDATES.labels(kind, "applied").inc()
