"""What a decision turns into: the decision log row, the issued coupon, the offer.decided
event (and any budget it exhausted), written in the caller's transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from services.campaign_engine.models import Campaign, Coupon, Decision, Outbox, ProcessedEvent
from services.campaign_engine.reservations import Reservation
from services.campaign_engine.usage import PRODUCER, announce_exhausted
from shared.events import Envelope, IssuedCoupon, OfferDecided, OfferRequested
from shared.outbox import add_event

CONSUMER = "campaign_engine.decisions"
# Plain tables for Core inserts (typed once here).
PROCESSED_TABLE = cast(Table, ProcessedEvent.__table__)
DECISION_TABLE = cast(Table, Decision.__table__)
COUPON_TABLE = cast(Table, Coupon.__table__)


@dataclass
class Candidate:
    campaign: Campaign
    offer: dict[str, Any]
    face: int
    day: str


@dataclass
class Outcome:
    """What was decided, before it is stored."""

    arm: str
    reason: str | None
    propensity: float = 1.0
    score: float | None = None
    candidate: Candidate | None = None
    features: list[float] | None = None
    reservation: Reservation | None = None
    coupon: IssuedCoupon | None = None
    exhausted: dict[str, list[str]] = field(default_factory=dict)


def store_decision(
    session: Session,
    envelope: Envelope,
    request: OfferRequested,
    outcome: Outcome,
    now: datetime,
    *,
    model_version: str,
) -> Decision:
    """Add the decision (and coupon) with its event to the transaction and flush it.

    The event id is recorded without a prior read: the caller's lookup already looked for
    the request, and a concurrent twin collides on the primary key instead.
    """
    with_offer = outcome.arm in ("treatment", "explore") and outcome.candidate is not None
    campaign_id = (
        outcome.candidate.campaign.campaign_id
        if outcome.candidate and outcome.arm != "none"
        else None
    )
    coupon = outcome.coupon
    decision = Decision(
        decision_id=str(uuid.uuid4()),
        request_id=request.request_id,
        customer_id=request.customer_id,
        campaign_id=campaign_id,
        offer_id=outcome.candidate.offer["offer_id"] if with_offer and outcome.candidate else None,
        arm=outcome.arm,
        propensity=outcome.propensity,
        score=outcome.score,
        model_version=model_version,
        features=json.dumps(outcome.features) if with_offer and outcome.features else None,
        coupon_code=coupon.code if coupon else None,
        expires_at=coupon.expires_at if coupon else None,
        decided_at=now,
    )
    # Core inserts on the session's connection: the ORM costs more CPU than the round trips.
    conn = session.connection()
    conn.execute(
        insert(PROCESSED_TABLE),
        [{"consumer": CONSUMER, "event_id": envelope.event_id, "processed_at": now}],
    )
    conn.execute(insert(DECISION_TABLE), [_row(decision)])
    if coupon is not None and outcome.candidate and outcome.reservation:
        conn.execute(
            insert(COUPON_TABLE),
            [
                {
                    "code": coupon.code,
                    "decision_id": decision.decision_id,
                    "campaign_id": campaign_id,
                    "offer_id": decision.offer_id,
                    "customer_id": request.customer_id,
                    "serial": outcome.reservation.serial,
                    "face_value": outcome.candidate.face,
                    "issued_at": now,
                    "expires_at": coupon.expires_at,
                }
            ],
        )
    add_event(
        session,
        Outbox,
        "offer.decided",
        OfferDecided(
            request_id=request.request_id,
            customer_id=request.customer_id,
            campaign_id=campaign_id,
            offer_id=decision.offer_id,
            arm=outcome.arm,  # type: ignore[arg-type]
            coupon=coupon,
            propensity=min(1.0, max(0.0, outcome.propensity)),
            score=outcome.score,
            model_version=model_version,
            reason=outcome.reason,
        ),
        key=request.customer_id,
        producer=PRODUCER,
    )
    session.flush()
    for cid, budgets in outcome.exhausted.items():
        announce_exhausted(session, cid, budgets)
    return decision


def _row(decision: Decision) -> dict[str, Any]:
    return {c.key: getattr(decision, c.key) for c in DECISION_TABLE.columns}


def already_decided(sessions: Callable[[], Session], request_id: str) -> bool:
    """Whether a decision for this request is committed."""
    with sessions() as session:
        return (
            session.scalar(select(Decision.decision_id).where(Decision.request_id == request_id))
            is not None
        )
