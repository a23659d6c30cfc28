"""The report page's daily series: coupons issued (decision time) and redeemed, net of voids
(till time), per Japan calendar day. Read live from the copies (page.py), and kept with a
campaign's final report when it is frozen (final.py), as plain JSON."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.redemption_tracker.models import Decision, Redemption

STORE_TIME = ZoneInfo("Asia/Tokyo")


def _per_day(moments: Iterable[datetime]) -> Counter[date]:
    return Counter(when.astimezone(STORE_TIME).date() for when in moments)


def daily_counts(s: Session, campaign_id: str) -> dict[str, list[Any]] | None:
    """{labels (MM-DD), issued, redeemed} per day with either; None when there is none."""
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
    return {
        "labels": [f"{d:%m-%d}" for d in days],
        "issued": [issued[d] for d in days],
        "redeemed": [redeemed[d] for d in days],
    }
