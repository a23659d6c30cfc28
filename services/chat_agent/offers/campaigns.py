"""chat_agent's copy of which campaigns run, kept from `campaign.events`.

The clerk asks for an offer on a first greeting only while a campaign runs; this copy
answers that without calling the campaign engine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.chat_agent.models import Campaign, ProcessedEvent
from shared.db import unit_of_work
from shared.events import CampaignStatusChanged, Envelope, payload_as
from shared.idempotency import first_time

CAMPAIGNS_CONSUMER = "chat_agent.campaigns"
CAMPAIGN_STATUS_EVENTS = ("campaign.activated", "campaign.paused", "campaign.ended")


def record_campaign_status(envelope: Envelope, *, sessions: Callable[[], Session]) -> None:
    """Keep the copy of a campaign's status and window (the newest change wins)."""
    snapshot = payload_as(envelope, CampaignStatusChanged).campaign
    with unit_of_work(sessions) as session:
        if not first_time(session, ProcessedEvent, CAMPAIGNS_CONSUMER, envelope.event_id):
            return
        row = session.get(Campaign, snapshot.campaign_id, with_for_update=True)
        if row is None:
            row = Campaign(campaign_id=snapshot.campaign_id)
            session.add(row)
        elif row.changed_at > envelope.occurred_at:
            return  # an older status change arriving late
        row.status = snapshot.status
        row.starts_at, row.ends_at = snapshot.starts_at, snapshot.ends_at
        row.changed_at = envelope.occurred_at


def campaign_active(session: Session, now: datetime) -> bool:
    """True when chat_agent's copy of the campaigns has one running now."""
    row = session.execute(
        select(Campaign.campaign_id)
        .where(Campaign.status == "active", Campaign.starts_at <= now, Campaign.ends_at > now)
        .limit(1)
    ).first()
    return row is not None
