"""What `tenin model prune-logs` may delete (modeling/retention.py), as queries: the cut-off,
the decisions that may go, which of their coupons may go with them, the coupons that outlived
their decisions while their campaign was live, the coupons' recorded redemptions, and the drop
members that were never decided (docs/learning.md § Retention)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.orm import Session

from services.campaign_engine.models import (
    Campaign,
    Coupon,
    Decision,
    Drop,
    DropMember,
    RedemptionSeen,
)

FINISHED_DROPS = ("paged", "done", "cancelled", "failed")  # any other status may still send
ENDED_CAMPAIGN = "ended"  # final: the only status whose campaign never issues again


def cutoff(now: datetime, retention: timedelta, spend_window: timedelta) -> datetime:
    """Decisions before this go: the retention window, never inside an outcome window."""
    if retention <= timedelta(0):
        raise ValueError("the retention window must be positive")
    return now - max(retention, spend_window)


def prunable(before: datetime, now: datetime) -> Any:
    in_active_drop = exists(
        select(DropMember.request_id)
        .join(Drop, Drop.drop_id == DropMember.drop_id)
        .where(DropMember.request_id == Decision.request_id, Drop.status.not_in(FINISHED_DROPS))
    )
    return and_(
        Decision.decided_at < before,
        or_(Decision.expires_at.is_(None), Decision.expires_at <= now),
        ~in_active_drop,
    )


def coupon_may_go(now: datetime) -> Any:
    """Expired, and its campaign has ended (by the campaigns' status, coupons' campaign id)."""
    ended = select(Campaign.campaign_id).where(Campaign.status == ENDED_CAMPAIGN)
    return and_(Coupon.expires_at <= now, Coupon.campaign_id.in_(ended))


def orphaned(before: datetime) -> Any:
    """Issued before the cut-off, its decision gone (while its campaign was still live)."""
    return and_(
        Coupon.issued_at < before, ~exists().where(Decision.decision_id == Coupon.decision_id)
    )


def coupons_of(codes: Sequence[str], now: datetime) -> Select[Coupon]:
    """A batch's expired coupons, by code: the primary key (a decision's coupon_code is its
    coupon's code), so the lookup never depends on how many coupons a campaign has."""
    return select(Coupon).where(Coupon.code.in_(codes), Coupon.expires_at <= now)


def ended_of(session: Session, campaign_ids: set[str]) -> set[str]:
    ended = Campaign.campaign_id.in_(campaign_ids), Campaign.status == ENDED_CAMPAIGN
    return set(session.scalars(select(Campaign.campaign_id).where(*ended)))


def members_of(request_ids: Sequence[str]) -> Select[DropMember]:
    """A batch's drop members (by their unique request id)."""
    return select(DropMember).where(DropMember.request_id.in_(request_ids))


def orphaned_coupons(now: datetime, before: datetime, limit: int) -> Select[Coupon]:
    """Coupons that outlived their decisions while their campaign was live, now it has ended."""
    return select(Coupon).where(coupon_may_go(now), orphaned(before)).limit(limit)


def redemptions_of(codes: Sequence[str]) -> Select[RedemptionSeen]:
    """The redemptions the engine recorded of these coupons (by its key's leading code)."""
    return select(RedemptionSeen).where(RedemptionSeen.coupon_code.in_(codes))


def undecided_members(before: datetime, limit: int | None = None) -> Select[DropMember]:
    """Drop members with no decision, of a finished drop created before the cut-off. Their
    request never became a decision (e.g. it was dead-lettered), so they never go with one;
    their drop stopped sending long ago, so nothing will decide them now, and its report
    reads its tallies, not its members."""
    decided = exists().where(Decision.request_id == DropMember.request_id)
    return (
        select(DropMember)
        .join(Drop, Drop.drop_id == DropMember.drop_id)
        .where(Drop.status.in_(FINISHED_DROPS), Drop.created_at < before, ~decided)
        .limit(limit)
    )
