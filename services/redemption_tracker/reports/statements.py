"""Revenue-share statements: one month of a campaign, line by line from the ledger.

Lines are per (day, kind), summed from the ledger, so a month's total equals the
report's `periods[].revenue_share` for it, always. On the `incremental` basis a month not
closed yet gets a `provisional` line: the share the close would book now
(docs/interfaces.md § Reports and statements).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from services.redemption_tracker.ledger import period_bounds, statement_lines
from services.redemption_tracker.models import Campaign
from services.redemption_tracker.reports.periods import incremental_periods
from shared.spreadsheet import csv_text

CSV_COLUMNS = (
    "date",
    "kind",
    "entries",
    "attributed_revenue",
    "discount_cost",
    "revenue_share",
    "provisional",
)


def build_statement(s: Session, campaign: Campaign, period: str, now: datetime) -> dict[str, Any]:
    """Statement lines of one month, summed from the ledger (plus a provisional line)."""
    lines = statement_lines(s, campaign.campaign_id, period)
    status = "closed" if period_bounds(period)[1] <= now else "open"
    if campaign.share_basis == "incremental":
        amount, closed = incremental_periods(s, campaign, now).get(period, (0, True))
        status = "closed" if closed else "provisional"
        if not closed:
            in_ledger = sum(line["revenue_share"] for line in lines)
            lines.append(
                {
                    "date": None,
                    "kind": "incremental_provisional",
                    "entries": 0,
                    "attributed_revenue": 0,
                    "discount_cost": 0,
                    "revenue_share": amount - in_ledger,
                    "provisional": True,
                }
            )
    total = {
        key: sum(line[key] for line in lines)
        for key in ("attributed_revenue", "discount_cost", "revenue_share")
    }
    return {
        "campaign_id": campaign.campaign_id,
        "period": period,
        "currency": "JPY",
        "basis": campaign.share_basis,
        "pct": campaign.share_bp / 100,
        "status": status,
        "lines": [{"provisional": False, **line} for line in lines],
        "total": total,
    }


def statement_csv(statement: dict[str, Any]) -> str:
    """A statement as CSV: one row per line, then the total (formula-safe, shared/spreadsheet.py)."""
    rows: list[list[object]] = [list(CSV_COLUMNS)]
    rows += [[line[c] for c in CSV_COLUMNS] for line in statement["lines"]]
    total = statement["total"]
    rows.append(
        [
            "total",
            "",
            "",
            total["attributed_revenue"],
            total["discount_cost"],
            total["revenue_share"],
            "",
        ]
    )
    return csv_text(rows)
