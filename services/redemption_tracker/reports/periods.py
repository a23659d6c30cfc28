"""Lift data from the database, and how the incremental basis is booked period by period.

On the `incremental` basis the share owed is pct × max(incremental revenue, 0), an
estimate that moves as sales arrive. The ledger stays append-only and statements stay
sums over it by booking, per campaign and month, a `period_close` entry once the month
has ended:

    close(P) = cumulative share at the end of P − every share already in the ledger
               for periods up to P (earlier closes included)

so the closes of months 1..P add up to the share owed on the data known at the end of
P, and a later revision (late sales, voids) lands as an adjustment in the next close —
possibly negative — instead of rewriting a month already stated. A month not yet closed
shows the same formula as a provisional amount; it is not in the ledger until the close.
Closing continues for `GRACE_MONTHS` after the campaign's end month, to take in late
sales and voids; after that the last close stands, and an ended campaign's report is
frozen (final.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import and_, case, exists, func, insert, select
from sqlalchemy.orm import Session

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.ledger import next_period, period_bounds, period_of
from services.redemption_tracker.models import (
    Campaign,
    CampaignUsage,
    CustomerLink,
    Decision,
    LedgerEntry,
    Transaction,
    Void,
)
from services.redemption_tracker.reports.lift import (
    LiftEstimate,
    incremental_share,
    welch_lift,
)
from services.redemption_tracker.sql import lock_rows
from shared.db import unit_of_work

log = structlog.get_logger(__name__)

TREATED = ("treatment", "explore")
GRACE_MONTHS = 3


@dataclass(frozen=True)
class Groups:
    treated: list[float]
    holdout: list[float]
    excluded: int  # linked customers with both a treated and a holdout decision


def window_end(campaign: Campaign, until: datetime) -> datetime:
    """The lift window ends at the campaign's end or `until`, whichever is first."""
    return min(campaign.ends_at, until)


def lift_groups(s: Session, campaign_id: str, start: datetime, end: datetime) -> Groups:
    """Spend per linked customer in [start, end), net of voids, per experiment group."""
    in_experiment = and_(
        Decision.campaign_id == campaign_id, Decision.arm.in_((*TREATED, "holdout"))
    )
    arms = s.execute(
        select(
            Decision.customer_id,
            func.max(case((Decision.arm.in_(TREATED), 1), else_=0)),
            func.max(case((Decision.arm == "holdout", 1), else_=0)),
        )
        .where(in_experiment, Decision.customer_id.in_(select(CustomerLink.customer_id)))
        .group_by(Decision.customer_id)
    ).all()
    spend = dict(
        s.execute(
            select(CustomerLink.customer_id, func.sum(Transaction.total))
            .join(CustomerLink, CustomerLink.member_hash == Transaction.member_hash)
            .where(
                Transaction.occurred_at >= start,
                Transaction.occurred_at < end,
                ~exists().where(Void.tx_id == Transaction.id),
                CustomerLink.customer_id.in_(select(Decision.customer_id).where(in_experiment)),
            )
            .group_by(CustomerLink.customer_id)
        ).all()
    )
    treated, holdout, excluded = [], [], 0
    for customer_id, t, h in arms:
        value = float(spend.get(customer_id) or 0)
        if t and h:
            excluded += 1
        elif t:
            treated.append(value)
        else:
            holdout.append(value)
    return Groups(treated, holdout, excluded)


def measure(s: Session, campaign: Campaign, until: datetime) -> tuple[LiftEstimate, Groups]:
    """The Welch estimate over the campaign window up to `until`."""
    end = window_end(campaign, until)
    if end <= campaign.starts_at:
        groups = Groups([], [], 0)
    else:
        groups = lift_groups(s, campaign.campaign_id, campaign.starts_at, end)
    return welch_lift(groups.treated, groups.holdout), groups


def cumulative_share(s: Session, campaign: Campaign, until: datetime) -> int:
    """Incremental-basis share owed on the data known now, for the window up to `until`."""
    return incremental_share(measure(s, campaign, until)[0], campaign.share_bp)


def last_period(campaign: Campaign) -> str:
    """The last month the incremental basis closes: the campaign's end month + GRACE_MONTHS."""
    last = period_of(campaign.ends_at)
    for _ in range(GRACE_MONTHS):
        last = next_period(last)
    return last


def last_close_at(campaign: Campaign) -> datetime:
    """When the campaign's last close is due, on either basis: the end of `last_period`."""
    return period_bounds(last_period(campaign))[1]


def campaign_periods(campaign: Campaign, now: datetime) -> list[str]:
    """Months the incremental basis books: start month … min(now, end month + grace)."""
    if now < campaign.starts_at:
        return []
    last = min(last_period(campaign), period_of(now))
    out, p = [], period_of(campaign.starts_at)
    while p <= last:
        out.append(p)
        p = next_period(p)
    return out


def close_key(campaign_id: str, period: str) -> str:
    """The ledger's dedupe key of a campaign's close of one month."""
    return f"close:{campaign_id}:{period}"


def _shares(s: Session, campaign_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """(close share by period, other share by period) from the ledger."""
    closes: dict[str, int] = {}
    other: dict[str, int] = {}
    for period, kind, share in s.execute(
        select(LedgerEntry.period, LedgerEntry.kind, func.sum(LedgerEntry.share))
        .where(LedgerEntry.campaign_id == campaign_id)
        .group_by(LedgerEntry.period, LedgerEntry.kind)
    ):
        target = closes if kind == "period_close" else other
        target[period] = target.get(period, 0) + int(share or 0)
    return closes, other


def incremental_periods(
    s: Session, campaign: Campaign, now: datetime
) -> dict[str, tuple[int, bool]]:
    """Share per month on the incremental basis: (amount, closed). Sums to the share owed."""
    closes, other = _shares(s, campaign.campaign_id)
    out: dict[str, tuple[int, bool]] = {}
    allocated = sum(v for p, v in other.items() if p < period_of(campaign.starts_at))
    for p in campaign_periods(campaign, now):
        if p in closes:
            out[p] = (closes[p] + other.get(p, 0), True)
            allocated += closes[p] + other.get(p, 0)
            continue
        cum = cumulative_share(s, campaign, min(period_bounds(p)[1], now))
        out[p] = (cum - allocated, False)
        allocated = cum
    return out


def close_periods(tracker: Tracker, campaign_id: str, now: datetime | None = None) -> list[str]:
    """Book the `period_close` entries of every ended, unclosed month. Idempotent."""
    now = now or tracker.clock()
    closed: list[str] = []
    with tracker.sessions() as s:
        campaign = s.get(Campaign, campaign_id)
        if campaign is None or campaign.share_basis != "incremental":
            return closed
        todo = [p for p in campaign_periods(campaign, now) if period_bounds(p)[1] <= now]
    for p in todo:
        with unit_of_work(tracker.sessions) as s:
            # The counter row lock serialises closers of one campaign.
            lock_rows(s, CampaignUsage, CampaignUsage.campaign_id, [campaign_id])
            campaign = s.get(Campaign, campaign_id)
            assert campaign is not None
            done = s.execute(
                select(LedgerEntry.id).where(LedgerEntry.dedupe_key == close_key(campaign_id, p))
            ).first()
            if done is not None:
                continue
            already = s.execute(
                select(func.coalesce(func.sum(LedgerEntry.share), 0)).where(
                    LedgerEntry.campaign_id == campaign_id, LedgerEntry.period <= p
                )
            ).scalar_one()
            cum = cumulative_share(s, campaign, period_bounds(p)[1])
            s.execute(
                insert(LedgerEntry).values(
                    dedupe_key=close_key(campaign_id, p),
                    campaign_id=campaign_id,
                    kind="period_close",
                    redemption_id=None,
                    store_id=None,
                    transaction_id=None,
                    revenue=0,
                    discount=0,
                    share=cum - int(already),
                    basis="incremental",
                    share_bp=campaign.share_bp,
                    period=p,
                    booked_at=now,
                )
            )
            closed.append(p)
            log.info("period_closed", campaign_id=campaign_id, period=p, share=cum - int(already))
    return closed


def close_all(tracker: Tracker, now: datetime | None = None) -> int:
    """Close ended months of every incremental-basis campaign (the worker runs this)."""
    with tracker.sessions() as s:
        ids = list(
            s.execute(
                select(Campaign.campaign_id).where(Campaign.share_basis == "incremental")
            ).scalars()
        )
    return sum(len(close_periods(tracker, cid, now)) for cid in ids)
