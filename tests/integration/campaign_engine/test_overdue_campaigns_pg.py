"""On PostgreSQL, worker processes ending overdue campaigns at the same time
(campaigns/overdue.py) end each one once: one campaign.ended each, whoever gets its lock;
and the worker runs the closer unless TENIN_CAMPAIGN_AUTO_END_DAYS is 0."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from services.campaign_engine.bootstrap import bootstrap
from services.campaign_engine.campaigns.overdue import end_overdue
from services.campaign_engine.models import Campaign, Outbox
from services.campaign_engine.worker import components
from shared.bus import InMemoryBroker
from shared.config import Settings
from shared.db import make_engine, make_session_factory
from tests.unit.campaign_engine.fakes import NOW
from tests.unit.campaign_engine.test_overdue_campaigns import GRACE, _ending_at

CAMPAIGNS, ENDERS = 12, 4


def test_concurrent_enders_end_each_overdue_campaign_once(fresh_db: str) -> None:
    sessions = make_session_factory(make_engine(fresh_db, pool_size=ENDERS))
    overdue = {_ending_at(sessions, NOW - GRACE - timedelta(days=1 + i)) for i in range(CAMPAIGNS)}
    kept = _ending_at(sessions, NOW - GRACE + timedelta(days=1))
    results: list[list[str]] = [[] for _ in range(ENDERS)]
    start = threading.Barrier(ENDERS)

    def ender(k: int) -> None:
        start.wait()
        results[k] = end_overdue(sessions, NOW, GRACE)

    threads = [threading.Thread(target=ender, args=(k,)) for k in range(ENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    ended = Counter(c for r in results for c in r)
    assert set(ended) == overdue and set(ended.values()) == {1}, "each once, by one ender"
    with sessions() as session:
        statuses = dict(session.execute(select(Campaign.campaign_id, Campaign.status)).all())
        events = Counter(
            session.scalars(select(Outbox.key).where(Outbox.event_type == "campaign.ended"))
        )
    assert all(statuses[c] == "ended" for c in overdue) and statuses[kept] == "active"
    assert events == Counter(dict.fromkeys(overdue, 1)), "one campaign.ended each"


def test_the_worker_runs_the_closer_unless_told_not_to(
    real_settings: Settings, fresh_db: str
) -> None:
    settings = replace(real_settings, database_url=fresh_db)
    on = components(bootstrap(settings, pre_ping=False), InMemoryBroker())
    off = components(
        bootstrap(replace(settings, campaign_auto_end_days=None), pre_ping=False), InMemoryBroker()
    )
    assert "overdue_campaigns" in on and "overdue_campaigns" not in off
