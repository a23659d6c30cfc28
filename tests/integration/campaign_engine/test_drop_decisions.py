"""A drop's requests through the real decision path (PostgreSQL, Redis): a follower a drop
asked is offered only the drop's campaign, and a request still on the bus when its drop
is cancelled gets no coupon (docs/interfaces.md § Campaign drops)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.campaign_engine.bootstrap import Engine
from services.campaign_engine.drops.commands import queue_drop
from services.campaign_engine.drops.runner import DropRunner
from services.campaign_engine.drops.schemas import DropIn
from services.campaign_engine.models import Campaign, Customer, Decision, Drop, Outbox
from shared.db import unit_of_work, utcnow
from shared.events import Envelope, decode
from tests.unit.campaign_engine.fakes import active_campaign


def _drop_requests(
    engine: Engine, followers: int, campaign: Campaign, offset: int | None = None
) -> tuple[str, list[Envelope]]:
    with unit_of_work(engine.sessions) as session:
        for _ in range(followers):
            cid = f"c_{uuid.uuid4().hex[:16]}"
            session.add(Customer(customer_id=cid, language="ja", utc_offset_minutes=offset))
    with unit_of_work(engine.sessions) as session:
        row = session.get(Campaign, campaign.number)
        assert row is not None
        drop_id = queue_drop(session, row, DropIn.model_validate({"quiet_hours": None}), utcnow())
        drop_id = drop_id.drop_id
    runner = DropRunner(engine.sessions, page_size=100)
    while runner.step():
        pass
    with engine.sessions() as session:
        bodies = session.scalars(select(Outbox.body)).all()
    asked = [e for e in (decode(b.encode()) for b in bodies) if e.type == "offer.requested"]
    assert len(asked) == followers
    return drop_id, asked


def _decisions(sessions: Callable[[], Session]) -> list[Decision]:
    with sessions() as session:
        return list(session.scalars(select(Decision)).all())


def test_a_drop_request_is_offered_only_the_drops_campaign(engine: Engine) -> None:
    now = utcnow()
    # The drop's campaign has the dearer offer; the other live campaign's cheaper one has
    # the higher expected value, so an unrestricted greedy policy would pick it.
    dropped = active_campaign(
        engine.sessions,
        now,
        offers=[
            {
                "title": "80 yen off bento",
                "discount": {"type": "amount", "value": 80},
                "applies_to": {"categories": ["bento"]},
                "min_basket": 0,
                "valid_hours": 72,
            }
        ],
    )
    active_campaign(engine.sessions, now)
    _, asked = _drop_requests(engine, 12, dropped)
    engine.decide_batch(asked)
    decided = _decisions(engine.sessions)
    assert len(decided) == 12
    assert {d.campaign_id for d in decided if d.coupon_code} == {dropped.campaign_id}
    assert sum(1 for d in decided if d.coupon_code) == 12


def test_a_request_of_a_cancelled_drop_gets_no_coupon(engine: Engine) -> None:
    campaign = active_campaign(engine.sessions, utcnow())
    drop_id, asked = _drop_requests(engine, 6, campaign)
    engine.decide_batch(asked[:2])
    with unit_of_work(engine.sessions) as session:
        drop = session.get(Drop, drop_id)
        assert drop is not None
        drop.status = "cancelled"
    engine.decide_batch(asked[2:])
    decided = _decisions(engine.sessions)
    assert (
        sorted((d.coupon_code is not None, d.reason or "") for d in decided)
        == [(False, "drop_cancelled")] * 4 + [(True, "exploit")] * 2
    )


def test_a_drop_decision_passes_on_the_customers_utc_offset(engine: Engine) -> None:
    campaign = active_campaign(engine.sessions, utcnow())
    _, asked = _drop_requests(engine, 3, campaign, offset=-300)  # their till: New York
    assert {e.payload["utc_offset_minutes"] for e in asked} == {-300}
    engine.decide_batch(asked)
    with engine.sessions() as session:
        bodies = session.scalars(select(Outbox.body)).all()
    decided = [e for e in (decode(b.encode()) for b in bodies) if e.type == "offer.decided"]
    assert len(decided) == 3
    assert {e.payload["utc_offset_minutes"] for e in decided} == {-300}
