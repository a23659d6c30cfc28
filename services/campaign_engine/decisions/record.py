"""What a decision batch turns into: the decision log rows, the issued coupons, the
offer.decided events (and any budget exhausted), written in the caller's transaction with
one multi-row statement per table.

The decision log is what the model is trained and evaluated on (modeling/outcomes.py): every
answer, coupon or not, with the propensity of its action, the model version, the reason, and
(once candidates were scored) the scored feature matrix with each candidate's score, expected
value and probability (docs/architecture.md § Measurement, "Decision log";
decisions/learning_log.py). The coupons are signed and the rows built (`sign_coupons`,
`batch_rows`) right before they are written (`write_rows`), on the decision loop's writer
thread while the loop chooses for the next batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from services.campaign_engine.budget.exhaustion import announce_exhausted
from services.campaign_engine.budget.limits import BudgetName
from services.campaign_engine.budget.reservation_store import Reservation
from services.campaign_engine.decisions.candidates import Candidate
from services.campaign_engine.decisions.learning_log import logged_candidates, logged_features
from services.campaign_engine.decisions.policy import Choice
from services.campaign_engine.models import (
    PRODUCER,
    Coupon,
    Decision,
    Outbox,
)
from shared.coupons import CouponClaims, issue_code, round_up_to_hour
from shared.events import Arm, IssuedCoupon, OfferRequested
from shared.ids import random_uuid
from shared.outbox import Draft, outbox_rows, outbox_writer
from shared.rows import RowWriter, any_of

# Plain tables for Core inserts (typed once here).
DECISION_TABLE = cast(Table, Decision.__table__)
COUPON_TABLE = cast(Table, Coupon.__table__)


class StoredDecision(NamedTuple):
    """A decision as stored: its `decisions` row (the columns a batch writes), returned to
    the caller without an ORM object per decision (a named tuple: built for every
    decision of a batch, ~4x cheaper than a frozen dataclass)."""

    decision_id: str
    request_id: str
    customer_id: str
    campaign_id: str | None
    offer_id: str | None
    arm: str
    propensity: float
    score: float | None
    model_version: str
    features: str | None
    reason: str | None
    candidates: list[dict[str, Any]] | None
    coupon_code: str | None
    expires_at: datetime | None
    decided_at: datetime


DECISION_COLUMNS = StoredDecision._fields
COUPON_COLUMNS = (
    "code",
    "decision_id",
    "campaign_id",
    "offer_id",
    "customer_id",
    "serial",
    "face_value",
    "issued_at",
    "expires_at",
)


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
    # The version of the model whose values ranked the candidates (None: not scored).
    model_version: str | None = None
    # campaign id → serial of a reservation the request already held when it was decided
    # (asked again after a crash); given back after commit unless this outcome took it over.
    held: dict[str, int] = field(default_factory=dict)


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
        discount=candidate.discount,
        valid_from=now,
        expires_at=expires,
        min_basket=offer["min_basket"],
    )


@dataclass
class Decided:
    """One request of a batch with its outcome, ready to store."""

    request: OfferRequested
    outcome: Outcome


def sign_coupons(batch: Sequence[Decided], key: bytes, now: datetime) -> None:
    """Sign the coupon of every outcome that reserved one (`outcome.coupon`)."""
    for d in batch:
        outcome = d.outcome
        if outcome.candidate is not None and outcome.reservation is not None:
            outcome.coupon = issue_coupon(outcome.candidate, outcome.reservation, key, now)


# Built once (docs/architecture.md § Decisions): a twin decided concurrently by another
# worker loses on a unique key instead of failing the batch. On any key, not only the
# request id: a twin that took over the other's held reservation carries the same coupon
# code, and PostgreSQL absorbs only the conflict target's conflict (the other index's
# raised, rarely, when both rows went in at once). `_only_twins_lost` then checks that
# every row left out lost to its own request's decision.
_DECISIONS = RowWriter(DECISION_TABLE, DECISION_COLUMNS, conflict="any", returning="request_id")
_COUPONS = RowWriter(COUPON_TABLE, COUPON_COLUMNS)
_OUTBOX = outbox_writer(Outbox)


@dataclass
class BatchRows:
    """A batch's rows, built before they are written: every request's, as if it wins;
    `write_rows` writes the coupon and event of those whose decision went in."""

    batch: Sequence[Decided]
    decisions: list[dict[str, Any]]
    coupons: dict[str, dict[str, Any]]  # by request id
    events: dict[str, dict[str, Any]]  # offer.decided outbox rows, by request id


def batch_rows(batch: Sequence[Decided], now: datetime, model_version: str) -> BatchRows:
    """Every row a batch may write (CPU only: no statement)."""
    decisions = [decision_row(d, now, model_version) for d in batch]
    pairs = list(zip(batch, decisions, strict=True))
    events = outbox_rows([_decided_draft(d, row) for d, row in pairs], PRODUCER, now)
    return BatchRows(
        batch,
        decisions,
        {
            row["request_id"]: _coupon_row(d, row, now)
            for d, row in pairs
            if d.outcome.coupon is not None
        },
        {row["request_id"]: event for row, event in zip(decisions, events, strict=True)},
    )


def write_rows(session: Session, rows: BatchRows) -> dict[str, StoredDecision]:
    """Write what `batch_rows` built, the decisions, coupons and offer.decided outbox rows,
    in the caller's transaction, one multi-row statement each; returns the stored
    decisions by request id. A request absent from the result was decided concurrently
    elsewhere: none of its rows is written, and the caller gives back its reservation.

    The decision log's unique request id is the decision consumer's record of what it
    applied (a redelivered request finds its decision), so no processed-event row is
    written (docs/architecture.md § Invariants).
    """
    if not rows.decisions:
        return {}
    conn = session.connection()
    won = set(_DECISIONS.write(conn, rows.decisions))
    if len(won) < len(rows.decisions):
        left_out = [r["request_id"] for r in rows.decisions if r["request_id"] not in won]
        _only_twins_lost(session, left_out)
    _COUPONS.write(conn, [row for rid, row in rows.coupons.items() if rid in won])
    _OUTBOX.write(conn, [row for rid, row in rows.events.items() if rid in won])
    exhausted: dict[str, set[BudgetName]] = {}
    for d in rows.batch:
        if d.request.request_id in won:
            for cid, budgets in d.outcome.exhausted.items():
                exhausted.setdefault(cid, set()).update(budgets)
    for cid, names in exhausted.items():
        announce_exhausted(session, cid, sorted(names))
    return {
        row["request_id"]: StoredDecision(**row)
        for row in rows.decisions
        if row["request_id"] in won
    }


class CouponCodeTaken(Exception):
    """A decision's coupon code is already another request's (a serial was reused)."""


def _only_twins_lost(session: Session, left_out: list[str]) -> None:
    """Each request whose row was left out must have its decision stored by a twin (the
    same request, decided concurrently, committed first); else its coupon code was
    another request's, and the batch fails rather than lose the request."""
    column = DECISION_TABLE.c.request_id
    stored = set(session.scalars(select(column).where(any_of(session, column, left_out))))
    if missing := [r for r in left_out if r not in stored]:
        raise CouponCodeTaken(f"coupon codes already issued to other requests: {missing}")


def decision_row(d: Decided, now: datetime, model_version: str) -> dict[str, Any]:
    """The decision log row (every column the explanations and the learning log read)."""
    outcome, request = d.outcome, d.request
    with_offer = outcome.arm in ("treatment", "explore") and outcome.candidate is not None
    coupon = outcome.coupon
    return {
        "decision_id": str(random_uuid()),
        "request_id": request.request_id,
        "customer_id": request.customer_id,
        "campaign_id": outcome.candidate.campaign.campaign_id
        if outcome.candidate and outcome.arm != "none"
        else None,
        "offer_id": outcome.candidate.offer["offer_id"]
        if with_offer and outcome.candidate
        else None,
        "arm": outcome.arm,
        "propensity": outcome.propensity,
        "score": outcome.score,
        # The version of the model that ranked (uplift or propensity), else the default.
        "model_version": outcome.model_version or model_version,
        "features": logged_features(outcome.choice),
        "reason": logged_reason(outcome),
        "candidates": logged_candidates(outcome.choice, outcome.scored),
        "coupon_code": coupon.code if coupon else None,
        "expires_at": coupon.expires_at if coupon else None,
        "decided_at": now,
    }


def _coupon_row(d: Decided, row: dict[str, Any], now: datetime) -> dict[str, Any]:
    outcome = d.outcome
    assert outcome.coupon is not None and outcome.candidate and outcome.reservation
    return {
        "code": outcome.coupon.code,
        "decision_id": row["decision_id"],
        "campaign_id": row["campaign_id"],
        "offer_id": row["offer_id"],
        "customer_id": row["customer_id"],
        "serial": outcome.reservation.serial,
        "face_value": outcome.candidate.face,
        "issued_at": now,
        "expires_at": outcome.coupon.expires_at,
    }


def _decided_draft(d: Decided, row: dict[str, Any]) -> Draft:
    """The offer.decided event of a stored decision (encoded with the batch's others)."""
    outcome = d.outcome
    return Draft(
        "offer.decided",
        row["customer_id"],
        {
            "request_id": row["request_id"],
            "customer_id": row["customer_id"],
            "campaign_id": row["campaign_id"],
            "offer_id": row["offer_id"],
            "arm": outcome.arm,
            "coupon": outcome.coupon,
            "propensity": min(1.0, max(0.0, outcome.propensity)),
            "score": outcome.score,
            "model_version": row["model_version"],
            "reason": outcome.reason,
            "drop_id": d.request.drop_id,  # a drop's coupon goes out as a push (chat_agent)
            # its quiet hours, in the customer's time
            "utc_offset_minutes": d.request.utc_offset_minutes,
        },
    )


def logged_reason(outcome: Outcome) -> str:
    """The reason: a NO_COUPON_REASONS entry, or "exploit"/"explore" for a coupon sent."""
    if outcome.reason:
        return outcome.reason
    return "explore" if outcome.arm == "explore" else "exploit"
