"""A drop's progress and report (docs/interfaces.md § Campaign drops), read from its
running counts: followers asked from the drop row, the rest from its tallies
(drop_tallies.py) — decided / coupons / holdout kept by the decision path, pushed / failed
/ skipped by chat_agent's reports (coupon.delivered, coupon.delivery_failed).

`recount` derives the same counts from the members joined with their decisions and their
reported states: what the tallies must always equal (the tests check it after crashes and
redeliveries), and a way to look when they are in doubt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from services.campaign_engine import drop_tallies
from services.campaign_engine.campaigns.schemas import Audience
from services.campaign_engine.drops.schemas import DropOut, DropReport, DropStatus, QuietHoursIn
from services.campaign_engine.models import Campaign, Decision, Drop, DropMember
from shared.quiet_hours import next_allowed

_COUNTS = (
    select(
        func.count(DropMember.customer_id),
        func.count(Decision.decision_id),
        func.count(Decision.coupon_code),
        func.sum(case((Decision.arm == "holdout", 1), else_=0)),
        func.sum(case((DropMember.delivery == "pushed", 1), else_=0)),
        func.sum(case((DropMember.delivery == "failed", 1), else_=0)),
        func.sum(case((DropMember.delivery == "skipped", 1), else_=0)),
    )
    .select_from(DropMember)
    .outerjoin(Decision, Decision.request_id == DropMember.request_id)
)


@dataclass(frozen=True)
class Counts:
    eligible: int
    decided: int
    coupons: int
    holdout: int
    pushed: int
    failed: int
    skipped: int

    @property
    def no_coupon(self) -> int:
        return self.decided - self.coupons - self.holdout


def counts(session: Session, drop: Drop) -> Counts:
    """The drop's counts, from its running tallies (one short query)."""
    t = drop_tallies.read(session, drop.drop_id)
    return Counts(
        eligible=drop.members,
        decided=t["decided"],
        coupons=t["coupons"],
        holdout=t["holdout"],
        pushed=t["pushed"],
        failed=t["failed"],
        skipped=t["skipped"],
    )


def recount(session: Session, drop_id: str) -> Counts:
    """The drop's counts derived from its members, their decisions and reported states (a
    join over the whole audience: not for every read)."""
    row = session.execute(_COUNTS.where(DropMember.drop_id == drop_id)).one()
    return Counts(*(int(v or 0) for v in row))


def remaining(drop: Drop, c: Counts) -> int:
    """Members not yet decided, plus coupons not yet pushed (or given up on)."""
    if drop.status in ("cancelled", "failed"):
        return 0
    to_push = c.coupons if drop.max_messages is None else min(c.coupons, drop.max_messages)
    return (c.eligible - c.decided) + max(0, to_push - c.pushed - c.failed - c.skipped)


def status_of(drop: Drop, c: Counts, now: datetime) -> DropStatus:
    """The status a marketer sees: the stored one, refined by the clock and the counts."""
    if drop.status in ("cancelled", "failed"):
        return "cancelled" if drop.status == "cancelled" else "failed"
    if drop.status == "paged" and remaining(drop, c) == 0:
        return "done"
    if next_allowed(drop.quiet_hours, now) > now:
        return "waiting_quiet_hours"
    if drop.status == "queued":
        return "queued"
    return "running"


def message_cost_of(campaign: Campaign) -> int:
    """Yen per push message (the campaign's `message_cost`)."""
    return int(campaign.message_cost or 0)


def report(c: Counts, cost: int) -> DropReport:
    """Messages the drop sent against a broadcast to every eligible follower."""
    return DropReport(
        message_cost=cost,
        messages_sent=c.pushed,
        broadcast_messages=c.eligible,
        messages_saved=max(0, c.eligible - c.pushed),
        cost=c.pushed * cost,
        broadcast_cost=c.eligible * cost,
        cost_saved=max(0, c.eligible - c.pushed) * cost,
    )


def drop_out(session: Session, drop: Drop, campaign: Campaign, now: datetime) -> DropOut:
    """The API view of a drop with its counts and report."""
    c = counts(session, drop)
    return DropOut(
        drop_id=drop.drop_id,
        campaign_id=drop.campaign_id,
        status=status_of(drop, c, now),
        eligible=c.eligible,
        decided=c.decided,
        coupons=c.coupons,
        no_coupon=c.no_coupon,
        holdout=c.holdout,
        pushed=c.pushed,
        failed=c.failed,
        remaining=remaining(drop, c),
        max_messages=drop.max_messages,
        send_after=drop.send_after,
        quiet_hours=QuietHoursIn.model_validate(drop.quiet_hours) if drop.quiet_hours else None,
        audience=Audience.model_validate(drop.audience) if drop.audience else None,
        created_at=drop.created_at,
        report=report(c, message_cost_of(campaign)),
    )
