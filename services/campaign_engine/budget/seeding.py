"""Redis's budget counters follow the database: seeded on first use, reconciled at start.

Redis is a cache of the database's truth (budget/reservations.py): a campaign missing
there is rebuilt from its issued coupons and the redemptions seen, never restarted from
zero, and a reservation that finds its campaign gone re-seeds it and tries once more.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from services.campaign_engine.budget.limits import Limits, Usage, campaign_day, day_start
from services.campaign_engine.budget.reservation_store import (
    Refused,
    Reservation,
    ReservationStore,
    Seed,
    Wanted,
)
from services.campaign_engine.models import Campaign, Coupon, RedemptionSeen

log = structlog.get_logger(__name__)

# Customer totals outlive the campaign a while, so a late re-seed is not needed for caps.
TOTAL_TTL_AFTER_END = timedelta(days=30)


def total_ttl_s(campaign: Campaign, now: datetime) -> int:
    """Seconds to keep a customer's all-time counter for this campaign."""
    return max(86400, int((campaign.ends_at + TOTAL_TTL_AFTER_END - now).total_seconds()))


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


def reserve(
    session: Session,
    reservations: ReservationStore,
    campaign: Campaign,
    customer_id: str,
    day: str,
    face: int,
    now: datetime,
) -> Reservation | Refused:
    """Reserve one coupon of `face` yen for the customer, re-seeding the campaign once if
    Redis lost it between the read and the reservation."""
    limits = Limits.of(campaign.budget, campaign.caps)
    ttl = total_ttl_s(campaign, now)
    taken = reservations.reserve(campaign.campaign_id, customer_id, day, face, limits, ttl)
    if isinstance(taken, Refused) and taken.limit == "unseeded":
        current_usage(session, reservations, campaign, customer_id, now)
        taken = reservations.reserve(campaign.campaign_id, customer_id, day, face, limits, ttl)
    return taken


def usage_days(campaigns: Sequence[Campaign], now: datetime) -> list[tuple[str, str]]:
    """(campaign id, the campaign's day now): what a customer's day counters are kept under."""
    return [(c.campaign_id, campaign_day(now, c.utc_offset_minutes)) for c in campaigns]


def read_usages(
    session: Session,
    reservations: ReservationStore,
    campaigns: Sequence[Campaign],
    customers: Sequence[str],
    now: datetime,
    read: dict[tuple[str, str], Usage | None] | None = None,
) -> dict[tuple[str, str], Usage]:
    """Usage of every (campaign, customer) pair of a decision batch: one round trip (none
    when the caller `read` them already: decisions/redis_reads.py), plus one seeding and
    re-read per campaign Redis does not have."""
    days = dict(usage_days(campaigns, now))
    found = (
        dict(read) if read is not None else reservations.usages_of(list(days.items()), customers)
    )
    unseeded = [
        c for c in campaigns if any(found.get((c.campaign_id, k)) is None for k in customers)
    ]
    for campaign in unseeded:
        current_usage(session, reservations, campaign, customers[0], now)  # seeds it
    if unseeded:
        again = [(c.campaign_id, days[c.campaign_id]) for c in unseeded]
        found.update(reservations.usages_of(again, customers))
    return {pair: usage or Usage(0, 0, 0) for pair, usage in found.items()}


def reserve_all(
    session: Session,
    reservations: ReservationStore,
    wanted: Sequence[Wanted],
    now: datetime,
    campaigns: dict[str, Campaign],
) -> list[Reservation | Refused]:
    """reserve() for a whole batch in one call; campaigns Redis lost meanwhile are re-seeded
    and their requests tried once more, in one more call."""
    taken = reservations.reserve_many(wanted)
    lost = [i for i, t in enumerate(taken) if isinstance(t, Refused) and t.limit == "unseeded"]
    if not lost:
        return taken
    try:
        for cid in {wanted[i].campaign_id for i in lost}:
            current_usage(session, reservations, campaigns[cid], wanted[lost[0]].customer_id, now)
        again = reservations.reserve_many([wanted[i] for i in lost])
    except Exception:
        # The first call's reservations would never be stored: give them back.
        reservations.release_many([t for t in taken if isinstance(t, Reservation)])
        raise
    for i, retried in zip(lost, again, strict=True):
        taken[i] = retried
    return taken


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
