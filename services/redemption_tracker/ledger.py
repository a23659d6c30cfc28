"""The append-only revenue-share ledger: its entries, statement periods and sums.

One entry per redemption (kind `redemption`, written by pos/redeem.py), one exact
negative per voided redemption (kind `void`, written by pos/voids.py), and, for campaigns
paid on the incremental basis, one `period_close` entry per closed month (written by
reports/periods.py). Entries are never updated or deleted; a unique `dedupe_key` per
entry makes every writer idempotent under retries and races.

A redemption entry carries the basket total as attributed revenue (only the first
redeemed coupon of a campaign on a transaction carries it, so a basket is attributed to
a campaign once), its discount, and, on the `attributed` basis, the share owed:
floor(revenue × pct). A void entry negates the original entry's figures exactly.

Statement periods are calendar months in Japan time (the retailer's books), by the time
an entry is booked: a closed month never changes afterwards. A void is booked in the
month it was recorded, and only reverses redemptions booked in a month still open
(pos/void_window.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.redemption_tracker.models import LedgerEntry

STATEMENT_TZ = ZoneInfo("Asia/Tokyo")


def period_of(moment: datetime) -> str:
    """The statement period (YYYY-MM, Japan time) a moment falls in."""
    return moment.astimezone(STATEMENT_TZ).strftime("%Y-%m")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a period, as UTC datetimes."""
    year, month = (int(x) for x in period.split("-"))
    start = datetime(year, month, 1, tzinfo=STATEMENT_TZ)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=STATEMENT_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


def next_period(period: str) -> str:
    """The month after."""
    return period_of(period_bounds(period)[1])


def redemption_entry(
    *,
    redemption_id: int,
    campaign_id: str,
    basis: str,
    share_bp: int,
    store_id: str,
    transaction_id: str,
    revenue: int,
    discount: int,
    now: datetime,
) -> dict[str, Any]:
    """The ledger row of one redemption (a dict for a bulk insert)."""
    share = revenue * share_bp // 10_000 if basis == "attributed" else 0
    return {
        "dedupe_key": f"redemption:{redemption_id}",
        "campaign_id": campaign_id,
        "kind": "redemption",
        "redemption_id": redemption_id,
        "store_id": store_id,
        "transaction_id": transaction_id,
        "revenue": revenue,
        "discount": discount,
        "share": share,
        "basis": basis,
        "share_bp": share_bp,
        "period": period_of(now),
        "booked_at": now,
    }


# --- sums -------------------------------------------------------------------------------


def totals_by_period(s: Session, campaign_id: str) -> dict[str, dict[str, int]]:
    """Ledger sums per period: revenue, discount, share (and entry counts)."""
    rows = s.execute(
        select(
            LedgerEntry.period,
            LedgerEntry.kind,
            func.count(),
            func.sum(LedgerEntry.revenue),
            func.sum(LedgerEntry.discount),
            func.sum(LedgerEntry.share),
        )
        .where(LedgerEntry.campaign_id == campaign_id)
        .group_by(LedgerEntry.period, LedgerEntry.kind)
    ).all()
    out: dict[str, dict[str, int]] = {}
    for period, kind, n, revenue, discount, share in rows:
        t = out.setdefault(
            period,
            {
                "attributed_revenue": 0,
                "discount_cost": 0,
                "revenue_share": 0,
                "closes": 0,
                "close_share": 0,
            },
        )
        t["attributed_revenue"] += int(revenue or 0)
        t["discount_cost"] += int(discount or 0)
        t["revenue_share"] += int(share or 0)
        if kind == "period_close":
            t["closes"] += int(n)
            t["close_share"] += int(share or 0)
    return out


def statement_lines(s: Session, campaign_id: str, period: str) -> list[dict[str, Any]]:
    """One line per (day, kind) of the period's entries, summed from the ledger."""
    entries = s.execute(
        select(
            LedgerEntry.booked_at,
            LedgerEntry.kind,
            LedgerEntry.revenue,
            LedgerEntry.discount,
            LedgerEntry.share,
        ).where(LedgerEntry.campaign_id == campaign_id, LedgerEntry.period == period)
    ).all()
    lines: dict[tuple[str | None, str], dict[str, Any]] = {}
    for booked_at, kind, revenue, discount, share in entries:
        day = (
            None
            if kind == "period_close"
            else booked_at.astimezone(STATEMENT_TZ).date().isoformat()
        )
        line = lines.setdefault(
            (day, kind),
            {
                "date": day,
                "kind": kind,
                "entries": 0,
                "attributed_revenue": 0,
                "discount_cost": 0,
                "revenue_share": 0,
            },
        )
        line["entries"] += 1
        line["attributed_revenue"] += int(revenue)
        line["discount_cost"] += int(discount)
        line["revenue_share"] += int(share)
    return sorted(lines.values(), key=lambda x: (x["date"] or "9999", x["kind"]))
