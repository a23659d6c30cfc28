"""Ending campaigns whose window closed long ago (docs/interfaces.md § Marketer campaign API,
Lifecycle).

Only a marketer's `end` made a campaign `ended`, so a campaign left `active` or `paused`
after its `ends_at` stayed so for ever: its report never became final and what it left
behind (the tracker's copies, its coupons in the decision log) was never pruned. The
engine's worker now ends, as `POST …/end` would (campaign.ended through the outbox), every
such campaign whose `ends_at` is more than `TENIN_CAMPAIGN_AUTO_END_DAYS` (30) days past.
That is safe for the tills: no coupon is valid past its campaign's end, and a till reports
at most `TENIN_POS_MAX_LATENESS_HOURS` late. Until then a marketer may still move `ends_at`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.campaign_engine import metrics
from services.campaign_engine.campaigns.commands import change_status
from services.campaign_engine.models import Campaign
from shared.db import unit_of_work
from shared.runtime import Component

log = structlog.get_logger(__name__)

CHECK_EVERY_S = 3600.0  # the grace is days long: an hour late is nothing
ENDABLE = ("active", "paused")


def end_overdue(sessions: Callable[[], Session], now: datetime, grace: timedelta) -> list[str]:
    """End every active or paused campaign whose window closed more than `grace` before
    `now`, each in a transaction of its own under its row lock (as the API takes it; a
    concurrent ender skips it); returns their ids."""
    ended: list[str] = []
    overdue = (
        select(Campaign)
        .where(Campaign.status.in_(ENDABLE), Campaign.ends_at < now - grace)
        .order_by(Campaign.ends_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    while True:
        with unit_of_work(sessions) as session:
            campaign = session.scalars(overdue).first()
            if campaign is None:
                return ended
            change_status(session, campaign, "end", now)
            ended.append(campaign.campaign_id)
        metrics.CAMPAIGN_CHANGES.labels("auto_end").inc()
        log.info(
            "campaign_ended_overdue",
            campaign_id=campaign.campaign_id,
            ends_at=campaign.ends_at.isoformat(),
            grace_days=grace / timedelta(days=1),
        )


def overdue_closer(
    sessions: Callable[[], Session],
    clock: Callable[[], datetime],
    grace: timedelta,
    every_s: float = CHECK_EVERY_S,
) -> Component:
    """The worker's component: `end_overdue` at start, then every `every_s`."""

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                end_overdue(sessions, clock(), grace)
            except Exception:
                log.exception("overdue_campaigns_failed")
            stop.wait(every_s)

    return run
