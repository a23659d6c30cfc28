"""What a decision turns into: the decision log row, the issued coupon, the offer.decided
event (and any budget it exhausted), written in the caller's transaction.

The decision log is what the model is trained and evaluated on (modeling/outcomes.py): every
answer, coupon or not, with the propensity of its action, the model version, the reason, and
(once candidates were scored) the scored feature matrix with each candidate's score, expected
value and probability (docs/architecture.md § Measurement, "Decision log").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
import orjson
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from services.campaign_engine.budget.exhaustion import announce_exhausted
from services.campaign_engine.budget.limits import BudgetName
from services.campaign_engine.budget.reservations import Reservation
from services.campaign_engine.decisions.candidates import Candidate
from services.campaign_engine.decisions.policy import Choice
from services.campaign_engine.models import (
    DECISIONS_CONSUMER,
    PRODUCER,
    Coupon,
    Decision,
    Outbox,
    ProcessedEvent,
)
from shared.coupons import CouponClaims, issue_code, round_up_to_hour
from shared.events import (
    Arm,
    Discount,
    Envelope,
    IssuedCoupon,
    OfferDecided,
    OfferRequested,
)
from shared.outbox import add_event

# Plain tables for Core inserts (typed once here).
PROCESSED_TABLE = cast(Table, ProcessedEvent.__table__)
DECISION_TABLE = cast(Table, Decision.__table__)
COUPON_TABLE = cast(Table, Coupon.__table__)


@dataclass
class Outcome:
    """What was decided, before it is stored."""

    arm: Arm
    reason: str | None
    propensity: float = 1.0
    score: float | None = None
    candidate: Candidate | None = None
    # The policy's choice among `scored` (every candidate it scored), for the learning log.
    choice: Choice | None = None
    scored: list[Candidate] = field(default_factory=list)
    reservation: Reservation | None = None
    coupon: IssuedCoupon | None = None
    exhausted: dict[str, list[BudgetName]] = field(default_factory=dict)


def coupon_expiry(now: datetime, valid_hours: int, campaign_ends_at: datetime) -> datetime:
    """When a coupon issued now expires: after its valid hours, never past the campaign's hour."""
    return round_up_to_hour(min(now + timedelta(hours=valid_hours), campaign_ends_at))


def issue_coupon(
    candidate: Candidate, reservation: Reservation, key: bytes, now: datetime
) -> IssuedCoupon:
    """The signed coupon for a reserved candidate: its code carries campaign, offer and serial."""
    campaign, offer = candidate.campaign, candidate.offer
    expires = coupon_expiry(now, offer["valid_hours"], campaign.ends_at)
    code = issue_code(
        key, CouponClaims(campaign.number, offer["index"], reservation.serial, expires)
    )
    return IssuedCoupon(
        code=code,
        title=offer["title"],
        discount=Discount.model_validate(offer["discount"]),
        valid_from=now,
        expires_at=expires,
        min_basket=offer["min_basket"],
    )


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

    The event id is recorded without a prior read: the caller's read of its inputs
    (decisions/inputs.py) already looked for the request, and a concurrent twin collides
    on the primary key instead.
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
        features=logged_features(outcome.choice),
        reason=logged_reason(outcome),
        candidates=logged_candidates(outcome.choice, outcome.scored),
        coupon_code=coupon.code if coupon else None,
        expires_at=coupon.expires_at if coupon else None,
        decided_at=now,
    )
    # Core inserts on the session's connection: the ORM costs more CPU than the round trips.
    conn = session.connection()
    conn.execute(
        insert(PROCESSED_TABLE),
        [{"consumer": DECISIONS_CONSUMER, "event_id": envelope.event_id, "processed_at": now}],
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
            arm=outcome.arm,
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


def logged_features(choice: Choice | None) -> str | None:
    """`{"candidates": [[...N_FEATURES], ...], "chosen": i | null}`: the matrix the policy scored.

    Written for every decision that got as far as scoring (holdout and no-coupon included), so
    training rows are the features exactly as they were at decision time: float32 values in
    their shortest form, which read back as the very same float32 (about 2 µs with orjson).
    """
    if choice is None or choice.matrix is None:
        return None
    return logged_matrix(choice.matrix, choice.index)


def logged_matrix(matrix: np.ndarray, chosen: int | None) -> str:
    """The `features` JSON of a scored matrix and the chosen row (None: no coupon)."""
    body = {"candidates": np.ascontiguousarray(matrix, dtype=np.float32), "chosen": chosen}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def logged_reason(outcome: Outcome) -> str:
    """The reason: a NO_COUPON_REASONS entry, or "exploit"/"explore" for a coupon sent."""
    if outcome.reason:
        return outcome.reason
    return "explore" if outcome.arm == "explore" else "exploit"


def logged_candidates(
    choice: Choice | None, scored: list[Candidate]
) -> list[dict[str, Any]] | None:
    """Each scored candidate's campaign, offer, P(redeem), expected value (yen) and probability."""
    if choice is None or not choice.scores or len(choice.scores) != len(scored):
        return None
    return [
        {
            "campaign_id": c.campaign.campaign_id,
            "offer_id": c.offer["offer_id"],
            "score": round(float(score), 6),
            "ev": round(float(ev), 3),
            "p": round(float(pr), 6),
        }
        for c, score, ev, pr in zip(
            scored, choice.scores, choice.values, choice.probabilities, strict=False
        )
    ]


def _row(decision: Decision) -> dict[str, Any]:
    return {c.key: getattr(decision, c.key) for c in DECISION_TABLE.columns}


def already_decided(sessions: Callable[[], Session], request_id: str) -> bool:
    """Whether a decision for this request is committed."""
    with sessions() as session:
        return (
            session.scalar(select(Decision.decision_id).where(Decision.request_id == request_id))
            is not None
        )
