"""The live report page: GET /v1/campaigns/{id}/report.html, drawn by charts.py.

It adds the daily series (coupons issued and redeemed per Japan calendar day) to the
same report dict the JSON endpoint serves, so the page and the API cannot disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.redemption_tracker.models import Decision, Redemption
from services.redemption_tracker.reports.charts import (
    DailySeries,
    ReportExtras,
    render_report_html,
)

STORE_TIME = ZoneInfo("Asia/Tokyo")


def _per_day(moments: Iterable[datetime]) -> Counter[date]:
    return Counter(when.astimezone(STORE_TIME).date() for when in moments)


def daily_series(s: Session, campaign_id: str) -> DailySeries | None:
    """Coupons issued (decision time) and redeemed, net of voids (till time), per day."""
    issued = _per_day(
        s.execute(
            select(Decision.decided_at).where(
                Decision.campaign_id == campaign_id, Decision.code.is_not(None)
            )
        ).scalars()
    )
    redeemed = _per_day(
        s.execute(
            select(Redemption.occurred_at).where(
                Redemption.campaign_id == campaign_id, Redemption.voided_at.is_(None)
            )
        ).scalars()
    )
    days = sorted(set(issued) | set(redeemed))
    if not days:
        return None
    return DailySeries(
        labels=[f"{d:%m-%d}" for d in days],
        issued=[issued[d] for d in days],
        redeemed=[redeemed[d] for d in days],
    )


def report_page(s: Session, report: dict[str, Any], now: datetime) -> str:
    """The self-contained HTML page for a report."""
    extras = ReportExtras(
        daily=daily_series(s, report["campaign_id"]),
        notes=[f"Served live by the redemption tracker at {now:%Y-%m-%d %H:%M} UTC."],
    )
    return render_report_html(report, extras)
