"""Budget usage as the database knows it: seeding Redis, and announcing exhausted budgets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.campaign_engine.domain import campaign_day, face_value
from services.campaign_engine.models import (
    BudgetExhaustion,
    Campaign,
    Coupon,
    Outbox,
    RedemptionSeen,
)
from services.campaign_engine.reservations import (
    Limits,
    ReservationStore,
    Seed,
    Usage,
)
from shared.events import CampaignBudgetExhausted
from shared.outbox import add_event

log = structlog.get_logger(__name__)

PRODUCER = "campaign_engine"
# Customer totals outlive the campaign a while, so a late re-seed is not needed for caps.
TOTAL_TTL_AFTER_END = timedelta(days=30)


def total_ttl_s(campaign: Campaign, now: datetime) -> int:
    """Seconds to keep a customer's all-time counter for this campaign."""
    return max(86400, int((campaign.ends_at + TOTAL_TTL_AFTER_END - now).total_seconds()))


def day_start(now: datetime, utc_offset_minutes: int) -> datetime:
    """The UTC instant the campaign's current day began."""
    offset = timedelta(minutes=utc_offset_minutes)
    local = now + offset
    return local.replace(hour=0, minute=0, second=0, microsecond=0) - offset


def usage_seed(session: Session, campaign: Campaign, now: datetime) -> Seed:
    """A campaign's usage recomputed from its issued coupons and the redemptions seen."""
    cid = campaign.campaign_id
    issued, money, serial = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Coupon.face_value), 0),
            func.coalesce(func.max(Coupon.serial), 0),
        ).where(Coupon.campaign_id == cid)
    ).one()
    redeemed, settled = session.execute(
        select(
            func.count(), func.coalesce(func.sum(RedemptionSeen.discount - Coupon.face_value), 0)
        )
        .select_from(RedemptionSeen)
        .join(Coupon, Coupon.code == RedemptionSeen.coupon_code)
        .where(Coupon.campaign_id == cid, RedemptionSeen.voided.is_(False))
    ).one()
    since = day_start(now, campaign.utc_offset_minutes)
    rows = session.execute(
        select(
            Coupon.customer_id,
            func.count(),
            func.sum(case((Coupon.issued_at >= since, 1), else_=0)),
        )
        .where(Coupon.campaign_id == cid)
        .group_by(Coupon.customer_id)
    ).all()
    return Seed(
        issued=int(issued),
        money=int(money) + int(settled),
        redeemed=int(redeemed),
        serial=int(serial),
        day=campaign_day(now, campaign.utc_offset_minutes),
        customer_day={c: int(d) for c, _, d in rows if d},
        customer_total={c: int(t) for c, t, _ in rows},
    )


def current_usage(
    session: Session,
    reservations: ReservationStore,
    campaign: Campaign,
    customer_id: str,
    now: datetime,
) -> Usage:
    """The campaign's usage in Redis, seeding it from the database first if it is missing."""
    day = campaign_day(now, campaign.utc_offset_minutes)
    usage = reservations.usage(campaign.campaign_id, customer_id, day)
    if usage is None:
        seeded = reservations.seed(
            campaign.campaign_id, usage_seed(session, campaign, now), total_ttl_s(campaign, now)
        )
        log.info("campaign_usage_seeded", campaign_id=campaign.campaign_id, by_us=seeded)
        usage = reservations.usage(campaign.campaign_id, customer_id, day)
    return usage or Usage(0, 0, 0)


def current_usages(
    session: Session,
    reservations: ReservationStore,
    campaigns: Sequence[Campaign],
    customer_id: str,
    now: datetime,
) -> list[Usage]:
    """current_usage for several campaigns, read in one Redis round trip."""
    if not campaigns:
        return []
    found = reservations.usages(
        [(c.campaign_id, campaign_day(now, c.utc_offset_minutes)) for c in campaigns], customer_id
    )
    return [
        u if u is not None else current_usage(session, reservations, c, customer_id, now)
        for c, u in zip(campaigns, found, strict=True)
    ]


def live_offers(campaign: Campaign) -> list[dict[str, Any]]:
    """The offers a campaign can still issue."""
    return [o for o in campaign.offers if not o.get("withdrawn")]


def exhausted_budgets(campaign: Campaign, usage: Usage) -> list[str]:
    """The campaign-wide budgets that leave no coupon of any live offer to issue."""
    limits = Limits.of(campaign.budget, campaign.caps)
    faces = [face_value(o) for o in live_offers(campaign)] or [0]
    out = []
    if limits.max_coupons is not None and usage.issued >= limits.max_coupons:
        out.append("max_coupons")
    if (
        limits.max_discount_total is not None
        and usage.money + min(faces) > limits.max_discount_total
    ):
        out.append("max_discount_total")
    if limits.max_redemptions is not None and usage.redeemed >= limits.max_redemptions:
        out.append("max_redemptions")
    return out


# (campaign, budget) pairs seen announced in the database: an exhausted campaign that
# stays active then costs no query per decision. Only committed announcements go in.
_KNOWN_ANNOUNCED: set[tuple[str, str]] = set()


def announce_exhausted(session: Session, campaign_id: str, budgets: Sequence[str]) -> list[str]:
    """Publish campaign.budget_exhausted once per (campaign, budget); returns the new ones."""
    announced = []
    for budget in budgets:
        if (campaign_id, budget) in _KNOWN_ANNOUNCED:
            continue
        if session.get(BudgetExhaustion, (campaign_id, budget)) is not None:
            _KNOWN_ANNOUNCED.add((campaign_id, budget))
            continue
        try:
            with session.begin_nested():
                session.add(BudgetExhaustion(campaign_id=campaign_id, budget=budget))
                session.flush()
                add_event(
                    session,
                    Outbox,
                    "campaign.budget_exhausted",
                    CampaignBudgetExhausted(campaign_id=campaign_id, budget=budget),  # type: ignore[arg-type]
                    key=campaign_id,
                    producer=PRODUCER,
                )
        except IntegrityError:
            continue  # a concurrent decision announced it first
        announced.append(budget)
        log.info("campaign_budget_exhausted", campaign_id=campaign_id, budget=budget)
    return announced


def reconcile_on_start(session: Session, reservations: ReservationStore, now: datetime) -> int:
    """Bring Redis up to the database for every live campaign (serials, issued, money)."""
    live = session.execute(
        select(Campaign).where(Campaign.status.in_(("active", "paused")))
    ).scalars()
    count = 0
    for campaign in live:
        reservations.reconcile(
            campaign.campaign_id, usage_seed(session, campaign, now), total_ttl_s(campaign, now)
        )
        count += 1
    return count
