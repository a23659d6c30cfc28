"""The campaign report and its CSV export (docs/interfaces.md § Reports and statements).

Every money figure comes from the append-only ledger (attributed revenue, discount
cost, shares), so a statement for a month (statements.py) and the report's line for
that month are the same sum. Definitions:

- issued: decisions of the campaign that carried a coupon; delivered: distinct codes in
  `coupon.delivered`; decisions: every `offer.decided` of the campaign (any arm) — one
  API call each, for the per-call-fee comparison;
- redeemed: live redemptions (voided ones are counted separately); redemption rate =
  redeemed / issued; late: those of the redeemed reported later than the till clock skew
  allows but within the allowed lateness (till_time.py), for the marketer to watch;
- attributed revenue: basket totals of transactions that redeemed a campaign coupon, net
  of voids; discount cost: discounts granted, net of voids;
- lift: see lift.py and periods.py (Welch 95% interval, linked customers only);
- revenue share: on `attributed`, the sum of the ledger's per-redemption shares
  (floor(pct × basket) each, negated on void); on `incremental`, the monthly closes plus
  the provisional amount of months not closed yet, which add up to
  pct × max(incremental revenue, 0);
- pacing: the campaign's pacing mode and its committed coupons and money over the window
  against the even line (pacing.py).

This is the live report. Once an ended campaign's statements are final, its report is
frozen and served instead, marked `final` (final.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.redemption_tracker.ledger import period_bounds, totals_by_period
from services.redemption_tracker.models import (
    Campaign,
    CouponCheck,
    Decision,
    Delivery,
    Redemption,
)
from services.redemption_tracker.reports.lift import incremental_share, share_of
from services.redemption_tracker.reports.pacing import pacing_report
from services.redemption_tracker.reports.periods import incremental_periods, measure, window_end
from shared.spreadsheet import csv_text


def _count(s: Session, stmt: Any) -> int:
    return int(s.execute(stmt).scalar_one() or 0)


def counts(s: Session, campaign_id: str) -> dict[str, Any]:
    """Funnel counts of a campaign."""
    decisions = _count(s, select(func.count()).where(Decision.campaign_id == campaign_id))
    issued = _count(
        s,
        select(func.count()).where(Decision.campaign_id == campaign_id, Decision.code.is_not(None)),
    )
    delivered = _count(s, select(func.count()).where(Delivery.campaign_id == campaign_id))
    redeemed = _count(
        s,
        select(func.count()).where(
            Redemption.campaign_id == campaign_id, Redemption.voided_at.is_(None)
        ),
    )
    late = _count(
        s,
        select(func.count()).where(
            Redemption.campaign_id == campaign_id,
            Redemption.voided_at.is_(None),
            Redemption.late.is_(True),
        ),
    )
    voided = _count(
        s,
        select(func.count()).where(
            Redemption.campaign_id == campaign_id, Redemption.voided_at.is_not(None)
        ),
    )
    rejected = dict(
        s.execute(
            select(CouponCheck.reason, func.count())
            .where(CouponCheck.campaign_id == campaign_id, CouponCheck.status == "rejected")
            .group_by(CouponCheck.reason)
        ).all()
    )
    return {
        "decisions": decisions,
        "issued": issued,
        "delivered": delivered,
        "redeemed": redeemed,
        "late": late,
        "voided": voided,
        "redemption_rate": round(redeemed / issued, 4) if issued else None,
        "rejected_by_reason": {str(k): int(v) for k, v in sorted(rejected.items())},
    }


def period_figures(s: Session, campaign: Campaign, now: datetime) -> list[dict[str, Any]]:
    """Per month: ledger sums, and the share owed for that month (with its status)."""
    ledger = totals_by_period(s, campaign.campaign_id)
    incremental = (
        incremental_periods(s, campaign, now) if campaign.share_basis == "incremental" else {}
    )
    out = []
    for p in sorted(set(ledger) | set(incremental)):
        t = ledger.get(p, {})
        if p in incremental:
            share, closed = incremental[p]
            status = "closed" if closed else "provisional"
        else:
            share = t.get("revenue_share", 0)
            status = "closed" if period_bounds(p)[1] <= now else "open"
        out.append(
            {
                "period": p,
                "status": status,
                "attributed_revenue": t.get("attributed_revenue", 0),
                "discount_cost": t.get("discount_cost", 0),
                "revenue_share": share,
            }
        )
    return out


def build_report(s: Session, campaign: Campaign, now: datetime) -> dict[str, Any]:
    """The campaign report (see the module docstring for each figure)."""
    c = counts(s, campaign.campaign_id)
    periods = period_figures(s, campaign, now)
    revenue = sum(p["attributed_revenue"] for p in periods)
    discount = sum(p["discount_cost"] for p in periods)
    estimate, groups = measure(s, campaign, now)
    owed = sum(p["revenue_share"] for p in periods)
    closed = sum(p["revenue_share"] for p in periods if p["status"] == "closed")
    lift = estimate.as_dict()
    lift["excluded_customers"] = groups.excluded
    lift["confidence"] = 0.95
    return {
        "campaign_id": campaign.campaign_id,
        "name": campaign.name,
        "status": campaign.status,
        "currency": "JPY",
        "as_of": now.isoformat(),
        # A live report; the final one, frozen at the campaign's last close, says so (final.py).
        "final": False,
        "frozen_at": None,
        "window": {
            "starts_at": campaign.starts_at.isoformat(),
            "ends_at": campaign.ends_at.isoformat(),
            "measured_until": max(campaign.starts_at, window_end(campaign, now)).isoformat(),
        },
        "counts": c,
        "money": {
            "attributed_revenue": revenue,
            "discount_cost": discount,
            "net_attributed_revenue": revenue - discount,
        },
        "lift": lift,
        "revenue_share": {
            "basis": campaign.share_basis,
            "pct": campaign.share_bp / 100,
            "owed": owed,
            "in_closed_periods": closed,
            "in_open_periods": owed - closed,
            "on_attributed_basis": share_of(revenue, campaign.share_bp),
            "on_incremental_basis": incremental_share(estimate, campaign.share_bp),
        },
        "per_call_fee": {
            "fee": campaign.per_call_fee,
            "decisions": c["decisions"],
            "would_have_earned": campaign.per_call_fee * c["decisions"],
        },
        "periods": periods,
        "pacing": pacing_report(s, campaign, now),
    }


def report_csv(report: dict[str, Any]) -> str:
    """The report flattened to `metric,value` rows (one row per figure), formula-safe."""
    rows: list[tuple[str, object]] = [("metric", "value")]

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list):
            for item in value:
                key = (item.get("period") or item.get("at")) if isinstance(item, dict) else None
                walk(
                    f"{prefix}.{key}", {k: v for k, v in item.items() if k not in ("period", "at")}
                )
        else:
            rows.append((prefix, value))

    walk("", report)
    return csv_text(rows)
