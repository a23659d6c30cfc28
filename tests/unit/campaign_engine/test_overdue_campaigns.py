"""A campaign left active or paused long after its window is ended by the engine
(campaigns/overdue.py): as `POST …/end` would, campaign.ended through the outbox; never
within the grace, never a draft, and only once."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from services.campaign_engine.campaigns.commands import change_status, create_campaign
from services.campaign_engine.campaigns.overdue import end_overdue, overdue_closer
from services.campaign_engine.campaigns.schemas import CampaignIn
from services.campaign_engine.models import Campaign, Outbox
from shared.db import unit_of_work
from tests.unit.campaign_engine.fakes import NOW, active_campaign, campaign_body

GRACE = timedelta(days=30)


def _ending_at(sessions, ends_at, status: str = "active") -> str:  # type: ignore[no-untyped-def]
    """A campaign whose window closed at `ends_at`, activated when it was running."""
    running = ends_at - timedelta(days=2)
    body = campaign_body(
        running,
        starts_at=(running - timedelta(days=1)).isoformat(),
        ends_at=ends_at.isoformat(),
    )
    with unit_of_work(sessions) as session:
        campaign = create_campaign(session, CampaignIn.model_validate(body))
        if status != "draft":
            change_status(session, campaign, "activate", running)
        if status == "paused":
            change_status(session, campaign, "pause", running)
        return campaign.campaign_id


def _status(sessions, campaign_id: str) -> str:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return str(
            session.scalar(select(Campaign.status).where(Campaign.campaign_id == campaign_id))
        )


def _ended_events(sessions, campaign_id: str) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        rows = session.scalars(
            select(Outbox).where(Outbox.key == campaign_id, Outbox.event_type == "campaign.ended")
        ).all()
        return len(rows)


def test_campaigns_past_the_grace_are_ended_once_and_announced(sessions) -> None:  # type: ignore[no-untyped-def]
    long_ago = _ending_at(sessions, NOW - GRACE - timedelta(hours=1))
    paused = _ending_at(sessions, NOW - GRACE - timedelta(days=40), status="paused")
    within = _ending_at(sessions, NOW - GRACE + timedelta(hours=1))
    draft = _ending_at(sessions, NOW - GRACE - timedelta(days=5), status="draft")
    running = active_campaign(sessions, NOW).campaign_id

    ended = end_overdue(sessions, NOW, GRACE)

    assert ended == [paused, long_ago], "oldest window first"
    assert _status(sessions, long_ago) == _status(sessions, paused) == "ended"
    assert _ended_events(sessions, long_ago) == _ended_events(sessions, paused) == 1
    assert _status(sessions, within) == "active", "a marketer may still move its end"
    assert _status(sessions, draft) == "draft", "a draft never issued anything"
    assert _status(sessions, running) == "active"
    assert end_overdue(sessions, NOW, GRACE) == [], "once"
    assert _ended_events(sessions, long_ago) == 1


def test_the_workers_closer_runs_at_start(sessions) -> None:  # type: ignore[no-untyped-def]
    overdue = _ending_at(sessions, NOW - GRACE - timedelta(days=1))
    stop = threading.Event()

    def clock():  # type: ignore[no-untyped-def]
        stop.set()  # one round, then the closer returns (as at SIGTERM)
        return NOW

    overdue_closer(sessions, clock, GRACE, every_s=3600)(stop)
    assert _status(sessions, overdue) == "ended"
