"""Final reports: a campaign's report becomes final when its statements do
(docs/architecture.md § Retention; docs/interfaces.md § Reports and statements).

The live report is recomputed from the tracker's copies (decisions, deliveries, links) on
every request. An ended campaign's statements stop changing at its last close: the end of
its end month + GRACE_MONTHS (periods.py), on either revenue-share basis, and never before
a till may still report a sale made before the campaign's end (till_time.py), so no
redemption, void or close can reach it after that. From then on (`final_at`) the period
closer builds the report one last time and keeps it, with the page's daily series, in
`campaign_reports`; every reader is then served that report, marked `"final": true` with
its `frozen_at`. Only an `ended` campaign is frozen: an active or paused one may still
have its window moved, so its report stays live until it is ended.

Freezing is idempotent: the campaign's counter row lock serialises freezers (as it does
closers), a frozen campaign is never built again, and the insert is `ON CONFLICT DO
NOTHING` on the campaign id.

A frozen campaign's copies then have no reader left, so the relay prunes them
(`FINAL_DECISIONS`, `FINAL_DELIVERIES`: rows older than TENIN_TRACKER_COPY_RETENTION_DAYS,
oldest first). Decisions for no campaign (arm `none`) have no reader at all: they are no
longer copied (copies.record_decision), and those copied before go the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import (
    Campaign,
    CampaignReport,
    CampaignUsage,
    Decision,
    Delivery,
    LedgerEntry,
)
from services.redemption_tracker.reports.daily import daily_counts
from services.redemption_tracker.reports.periods import close_key, last_close_at, last_period
from services.redemption_tracker.reports.report import build_report
from services.redemption_tracker.sql import bulk, insert_ignore, lock_rows
from services.redemption_tracker.till_time import TillTime
from shared.db import unit_of_work
from shared.retention import Aged

log = structlog.get_logger(__name__)

FINAL_STATUS = "ended"  # the only status whose campaign can no longer change
_FROZEN = select(CampaignReport.campaign_id)
# What the tracker's relay prunes (shared/retention.py), by the age indexes of migration 0020.
FINAL_DECISIONS = Aged.of(
    Decision,
    "decided_at",
    only=or_(Decision.campaign_id.is_(None), Decision.campaign_id.in_(_FROZEN)),
)
FINAL_DELIVERIES = Aged.of(Delivery, "delivered_at", only=Delivery.campaign_id.in_(_FROZEN))


def final_at(campaign: Campaign, till_time: TillTime) -> datetime:
    """When an ended campaign's report becomes final: its last close, and no sooner than
    a till may still report a sale made before the campaign's end."""
    return max(last_close_at(campaign), campaign.ends_at + till_time.max_lateness)


def _due(s: Session, campaign: Campaign, now: datetime, till_time: TillTime) -> bool:
    """Final now and not frozen yet (on the incremental basis: the last close is booked)."""
    if campaign.status != FINAL_STATUS or final_at(campaign, till_time) > now:
        return False
    if s.get(CampaignReport, campaign.campaign_id) is not None:
        return False
    if campaign.share_basis != "incremental":
        return True
    last = close_key(campaign.campaign_id, last_period(campaign))
    return (
        s.execute(select(LedgerEntry.id).where(LedgerEntry.dedupe_key == last)).first() is not None
    )


def freeze_report(tracker: Tracker, campaign_id: str, now: datetime | None = None) -> bool:
    """Build and keep the campaign's final report if it is due; True when this call froze it."""
    now = now or tracker.clock()
    with unit_of_work(tracker.sessions) as s:
        lock_rows(s, CampaignUsage, CampaignUsage.campaign_id, [campaign_id])
        campaign = s.get(Campaign, campaign_id)
        if campaign is None or not _due(s, campaign, now, tracker.till_time):
            return False
        report = {**build_report(s, campaign, now), "final": True, "frozen_at": now.isoformat()}
        row = {
            "campaign_id": campaign_id,
            "frozen_at": now,
            "report": report,
            "daily": daily_counts(s, campaign_id),
        }
        stmt = insert_ignore(s, CampaignReport, ["campaign_id"]).returning(
            CampaignReport.campaign_id
        )
        frozen = bulk(s, stmt, [row]).first() is not None
    if frozen:
        log.info("report_frozen", campaign_id=campaign_id, frozen_at=now.isoformat())
    return frozen


def freeze_all(tracker: Tracker, now: datetime | None = None) -> list[str]:
    """Freeze the report of every ended campaign that is final by now (the worker's period
    closer runs this after the closes); the campaigns frozen by this call."""
    now = now or tracker.clock()
    with tracker.sessions() as s:
        ended = s.execute(
            select(Campaign).where(
                Campaign.status == FINAL_STATUS,
                Campaign.ends_at < now,
                Campaign.campaign_id.not_in(_FROZEN),
            )
        ).scalars()
        due = [c.campaign_id for c in ended if final_at(c, tracker.till_time) <= now]
    frozen = []
    for campaign_id in due:
        try:
            if freeze_report(tracker, campaign_id, now):
                frozen.append(campaign_id)
        except Exception:
            # One campaign's failure must not hold up the others; retried next round.
            log.exception("report_freeze_failed", campaign_id=campaign_id)
    return frozen


def final_report(s: Session, campaign_id: str) -> CampaignReport | None:
    """The campaign's frozen report, if it has one."""
    return s.get(CampaignReport, campaign_id)


def served_report(s: Session, campaign: Campaign, now: datetime) -> dict[str, Any]:
    """What every reader of a campaign's report gets: the final report once it is frozen,
    the live one until then."""
    final = final_report(s, campaign.campaign_id)
    return dict(final.report) if final is not None else build_report(s, campaign, now)
