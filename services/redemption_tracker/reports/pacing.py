"""The pacing curve of a campaign report: what it committed over its window against the even
line (docs/interfaces.md § Reports and statements; docs/architecture.md § Budget pacing).

At each of up to POINTS moments from the start of the window to now (or its end), the
cumulative coupons issued and the money they committed at issue (their face value: the
amount, the free item's price, or a percent of the larger of the minimum basket and a
typical basket, as the engine reserves it), and the even line: the budget times the share
of the window elapsed. The engine lets an `even` campaign run ahead of that line only by
its pacing slack; an `asap` campaign's curve is drawn against the same line for comparison.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import accumulate
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.redemption_tracker.models import Campaign, Decision
from shared.model.features import DEFAULT_TYPICAL_BASKET

POINTS = 48


def committed_at_issue(discount: Mapping[str, Any] | None, min_basket: int | None) -> int:
    """Yen one issued coupon commits of the money budget (the engine's face value)."""
    if not discount:
        return 0
    value = int(discount.get("value") or 0)
    if discount.get("type") == "percent":
        return math.ceil(value * max(min_basket or 0, DEFAULT_TYPICAL_BASKET) / 100)
    return value


def moments(starts_at: datetime, ends_at: datetime, now: datetime, points: int) -> list[datetime]:
    """Evenly spaced moments from the window's start to now or its end, whichever is first."""
    last = min(max(now, starts_at), ends_at)
    if last <= starts_at:
        return [starts_at]
    span, n = last - starts_at, max(1, points - 1)
    return [starts_at + span * i / n for i in range(n + 1)]


def curve(
    issued: Sequence[tuple[datetime, int]],
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
    budget: Mapping[str, Any],
    points: int = POINTS,
) -> list[dict[str, Any]]:
    """The curve's points from (issued at, yen committed) pairs sorted by time (pure)."""
    times = [at for at, _ in issued]
    money = list(accumulate(yen for _, yen in issued))
    window = (ends_at - starts_at).total_seconds()
    max_coupons, max_money = budget.get("max_coupons"), budget.get("max_discount_total")
    out = []
    for at in moments(starts_at, ends_at, now, points):
        n = bisect.bisect_right(times, at)
        elapsed = (at - starts_at).total_seconds() / window if window > 0 else 1.0
        out.append(
            {
                "at": at.isoformat(),
                "elapsed": round(elapsed, 6),
                "coupons": n,
                "ideal_coupons": None if max_coupons is None else round(max_coupons * elapsed, 3),
                "committed": money[n - 1] if n else 0,
                "ideal_committed": None if max_money is None else round(max_money * elapsed, 3),
            }
        )
    return out


def pacing_report(s: Session, campaign: Campaign, now: datetime) -> dict[str, Any]:
    """The report's `pacing` member: the mode, the budgets paced, and the curve."""
    rows = s.execute(
        select(Decision.decided_at, Decision.discount, Decision.min_basket)
        .where(Decision.campaign_id == campaign.campaign_id, Decision.code.is_not(None))
        .order_by(Decision.decided_at)
    ).all()
    issued = [(at, committed_at_issue(discount, basket)) for at, discount, basket in rows]
    budget = campaign.budget or {}
    return {
        "mode": campaign.pacing,
        "max_coupons": budget.get("max_coupons"),
        "max_discount_total": budget.get("max_discount_total"),
        "points": curve(issued, campaign.starts_at, campaign.ends_at, now, budget),
    }
