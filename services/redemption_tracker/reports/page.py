"""The report page: GET /v1/campaigns/{id}/report.html, drawn by charts.py.

It adds the daily series (coupons issued and redeemed per Japan calendar day, daily.py) to
the same report dict the JSON endpoint serves, so the page and the API cannot disagree:
both live, or both as frozen with the campaign's final report (final.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from services.redemption_tracker.models import Campaign
from services.redemption_tracker.reports.charts import (
    DailySeries,
    ReportExtras,
    render_report_html,
)
from services.redemption_tracker.reports.daily import daily_counts
from services.redemption_tracker.reports.final import final_report
from services.redemption_tracker.reports.report import build_report


def report_page(s: Session, campaign: Campaign, now: datetime) -> str:
    """The self-contained HTML page of a campaign's report: the final one once frozen."""
    final = final_report(s, campaign.campaign_id)
    served = f"{now:%Y-%m-%d %H:%M} UTC"
    if final is None:
        report, daily = build_report(s, campaign, now), daily_counts(s, campaign.campaign_id)
        note = f"Served live by the redemption tracker at {served}."
    else:
        report, daily = final.report, final.daily
        note = (
            f"Final report, frozen at {final.frozen_at:%Y-%m-%d %H:%M} UTC once the campaign's "
            f"statements were final; served by the redemption tracker at {served}."
        )
    extras = ReportExtras(daily=DailySeries(**daily) if daily else None, notes=[note])
    return render_report_html(report, extras)
