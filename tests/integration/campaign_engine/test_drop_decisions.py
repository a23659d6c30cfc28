"""A drop's requests through the real decision path (PostgreSQL, Redis): the runner decides
each page in the page's transaction (a page that fails to decide goes the bus way, one
that fails to commit gives back its reservations), a follower a drop asked is offered
only the drop's campaign, and a request still on the bus when its drop is cancelled gets
no coupon (docs/interfaces.md § Campaign drops). Throughout, the drop's running tallies
equal a recount from its members and decisions: decided once, whichever way."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from services.campaign_engine.bootstrap import Engine
from services.campaign_engine.decisions.decide import DecidedBatch
from services.campaign_engine.drops.commands import queue_drop
from services.campaign_engine.drops.progress import Counts, counts, recount
from services.campaign_engine.drops.runner import DropRunner
from services.campaign_engine.drops.schemas import DropIn
from services.campaign_engine.models import (
    Campaign,
    Customer,
    Decision,
    Drop,
    DropMember,
    Outbox,
)
from shared.db import unit_of_work, utcnow
from shared.events import Envelope, decode
from tests.unit.campaign_engine.fakes import active_campaign


def _queued_drop(
    engine: Engine, followers: int, campaign: Campaign, offset: int | None = None
) -> str:
    """`followers` new following customers and a drop of `campaign` queued for them."""
    with unit_of_work(engine.sessions) as session:
        for _ in range(followers):
            cid = f"c_{uuid.uuid4().hex[:16]}"
            session.add(Customer(customer_id=cid, language="ja", utc_offset_minutes=offset))
    with unit_of_work(engine.sessions) as session:
        row = session.get(Campaign, campaign.number)
        assert row is not None
        queued = queue_drop(session, row, DropIn.model_validate({"quiet_hours": None}), utcnow())
        return queued.drop_id


def _drop_requests(
    engine: Engine, followers: int, campaign: Campaign, offset: int | None = None
) -> tuple[str, list[Envelope]]:
    """A drop paged the bus way (a runner without a decider): its offer.requested events."""
    drop_id = _queued_drop(engine, followers, campaign, offset)
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


def _issued(engine: Engine, campaign: Campaign) -> int:
    """Coupons the campaign's budget counts as taken in Redis."""
    usage = engine.reservations.usage(campaign.campaign_id, "nobody", "19700101")
    return 0 if usage is None else usage.issued


def _page_all(runner: DropRunner) -> None:
    for _ in range(100):
        if not runner.step():
            return
    raise AssertionError("the runner never stopped paging")


def _members(sessions: Callable[[], Session], drop_id: str) -> list[DropMember]:
    with sessions() as session:
        return list(session.scalars(select(DropMember).where(DropMember.drop_id == drop_id)))


def _tallied(engine: Engine, drop_id: str) -> Counts:
    """The drop's counts as its progress reads them, checked against a recount."""
    with engine.sessions() as session:
        drop = session.get(Drop, drop_id)
        assert drop is not None
        tallied = counts(session, drop)
        assert tallied == recount(session, drop_id), "tallies drifted from the recount"
        return tallied


def test_the_runner_decides_each_page_in_the_pages_transaction(engine: Engine) -> None:
    campaign = active_campaign(engine.sessions, utcnow())
    drop_id = _queued_drop(engine, 25, campaign)
    runner = DropRunner(engine.sessions, page_size=10, decide=engine.decide_within)
    _page_all(runner)
    members = _members(engine.sessions, drop_id)
    decided = _decisions(engine.sessions)
    assert len(members) == 25
    assert sorted(d.request_id for d in decided) == sorted(m.request_id for m in members)
    assert sum(1 for d in decided if d.coupon_code) == 25 == _issued(engine, campaign)
    with engine.sessions() as session:
        bodies = session.scalars(select(Outbox.body)).all()
    events = [decode(b.encode()) for b in bodies]
    assert not [e for e in events if e.type == "offer.requested"]  # nothing asked on the bus
    pushed = [e for e in events if e.type == "offer.decided"]
    assert sorted(e.payload["request_id"] for e in pushed) == sorted(d.request_id for d in decided)
    assert {e.payload["drop_id"] for e in pushed} == {drop_id}
    _page_all(runner)  # paged: nobody is decided twice
    assert len(_decisions(engine.sessions)) == 25
    tallied = _tallied(engine, drop_id)
    assert (tallied.eligible, tallied.decided, tallied.coupons) == (25, 25, 25)


def test_a_page_that_fails_to_decide_goes_the_bus_way_and_the_rest_does_not(
    engine: Engine,
) -> None:
    campaign = active_campaign(engine.sessions, utcnow())
    drop_id = _queued_drop(engine, 25, campaign)
    with unit_of_work(engine.sessions) as session:  # the database refuses one decision
        poison = session.scalars(select(Customer.customer_id).order_by(Customer.customer_id))
        poisoned = list(poison)[4]  # on the first page of 10
        session.execute(
            text(f"""
            CREATE FUNCTION campaign_engine.refuse() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON campaign_engine.decisions
            FOR EACH ROW WHEN (NEW.customer_id = '{poisoned}')
            EXECUTE FUNCTION campaign_engine.refuse();
        """)
        )
    runner = DropRunner(engine.sessions, page_size=10, decide=engine.decide_within)
    with pytest.raises(Exception, match="refused by test"):
        runner.step()
    assert _members(engine.sessions, drop_id) == []  # nothing of the page was kept
    assert _issued(engine, campaign) == 0  # and its reservations were given back
    _page_all(runner)
    assert len(_members(engine.sessions, drop_id)) == 25
    with engine.sessions() as session:
        bodies = session.scalars(select(Outbox.body)).all()
    asked = [e for e in (decode(b.encode()) for b in bodies) if e.type == "offer.requested"]
    assert len(asked) == 10  # the failed page, now on the bus for the decision consumer
    assert poisoned in {e.payload["customer_id"] for e in asked}
    assert len(_decisions(engine.sessions)) == 15  # the other pages were decided here
    assert _issued(engine, campaign) == 15
    assert (_tallied(engine, drop_id).eligible, _tallied(engine, drop_id).decided) == (25, 15)
    with pytest.raises(Exception, match="refused by test"):
        engine.decide_batch(asked)  # the consumer splits such a batch (tests of its own)
    engine.decide_batch([e for e in asked if e.payload["customer_id"] != poisoned])
    assert len(_decisions(engine.sessions)) == 24
    assert _issued(engine, campaign) == 24
    # The bus way counts too, and a redelivered request is not counted again.
    engine.decide_batch([e for e in asked if e.payload["customer_id"] != poisoned])
    assert _tallied(engine, drop_id).decided == 24


def test_a_page_that_fails_to_commit_gives_back_its_reservations(engine: Engine) -> None:
    campaign = active_campaign(engine.sessions, utcnow())
    drop_id = _queued_drop(engine, 10, campaign)

    def decide_then_fail_at_commit(session: Session, requests: Any) -> DecidedBatch:
        decided = engine.decide_within(session, requests)
        event.listen(session, "before_commit", _refuse_commit, once=True)
        return decided

    failing = DropRunner(engine.sessions, page_size=10, decide=decide_then_fail_at_commit)
    with pytest.raises(RuntimeError, match="commit refused"):
        failing.step()
    assert _decisions(engine.sessions) == []
    assert _members(engine.sessions, drop_id) == []
    assert _issued(engine, campaign) == 0
    _page_all(DropRunner(engine.sessions, page_size=10, decide=engine.decide_within))
    assert sum(1 for d in _decisions(engine.sessions) if d.coupon_code) == 10
    assert _issued(engine, campaign) == 10
    assert _tallied(engine, drop_id).decided == 10  # the failed commit counted nothing


def _refuse_commit(session: Session) -> None:
    raise RuntimeError("commit refused")


def test_a_page_redone_after_its_runner_died_takes_over_what_it_had_reserved(
    engine: Engine,
) -> None:
    campaign = active_campaign(
        engine.sessions,
        utcnow(),
        budget={"max_coupons": 10},
        caps={"per_customer_per_day": 1, "per_customer_total": 1},
    )
    drop_id = _queued_drop(engine, 10, campaign)

    def decide_then_die(session: Session, requests: Any) -> DecidedBatch:
        engine.decide_within(session, requests)
        raise KeyboardInterrupt  # as if SIGKILLed: nothing committed, nothing given back

    with pytest.raises(KeyboardInterrupt):
        DropRunner(engine.sessions, page_size=10, decide=decide_then_die).step()
    assert _members(engine.sessions, drop_id) == []
    assert _issued(engine, campaign) == 10  # the whole budget reserved by the dead runner
    _page_all(DropRunner(engine.sessions, page_size=10, decide=engine.decide_within))
    decided = _decisions(engine.sessions)
    assert len(decided) == 10
    # Every follower still got the coupon the dead runner had reserved for them (without
    # taking it over, the budget and each customer's cap of one would refuse them all).
    assert sum(1 for d in decided if d.coupon_code) == 10 == _issued(engine, campaign)
    assert _tallied(engine, drop_id).coupons == 10
