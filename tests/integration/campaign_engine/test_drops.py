"""Campaign drops on real PostgreSQL (and Redis for the dry run's features): the API, the
runner that pages followers into offer requests, resumption, cancel, and the counts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.campaign_engine import drop_tallies
from services.campaign_engine.app import create_app
from services.campaign_engine.bootstrap import Engine
from services.campaign_engine.decisions.policy import in_holdout
from services.campaign_engine.drops.deliveries import record_drop_delivery
from services.campaign_engine.drops.progress import counts, recount
from services.campaign_engine.drops.runner import DropRunner, drop_request_id
from services.campaign_engine.handlers import UPDATE_TYPES, consumer_handler, handlers
from services.campaign_engine.models import (
    Campaign,
    Customer,
    Decision,
    Drop,
    DropMember,
    Outbox,
)
from shared.auth import create_key
from shared.db import unit_of_work, utcnow
from shared.events import CouponDelivered, CouponDeliveryFailed, Envelope, decode, make_event
from tests.unit.campaign_engine.fakes import active_campaign, campaign_body


def _followers(sessions: Callable[[], Session], n: int, **state: bool) -> list[str]:
    ids = [f"c_{uuid.uuid4().hex[:16]}" for _ in range(n)]
    with unit_of_work(sessions) as session:
        for cid in ids:
            session.add(Customer(customer_id=cid, language="ja", **state))
    return ids


class Marketer:
    def __init__(self, client: FlaskClient, key: str) -> None:
        self.client, self.key = client, key

    def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"}
        return self.client.open(path, method=method, headers=headers, json=body)

    def drop(self, campaign_id: str, body: dict[str, Any]) -> Any:
        return self.call("POST", f"/v1/campaigns/{campaign_id}/drops", body)


@pytest.fixture
def marketer(engine: Engine) -> Marketer:
    with unit_of_work(engine.sessions) as session:
        key = create_key(session, engine.settings.secret_key, "marketer", None)
    return Marketer(create_app(engine=engine).test_client(), key)


def _events(sessions: Callable[[], Session], kind: str) -> list[Any]:
    with sessions() as session:
        bodies = session.scalars(select(Outbox.body)).all()
    return [e for e in (decode(b.encode()) for b in bodies) if e.type == kind]


def _page_all(runner: DropRunner, limit: int = 100) -> int:
    steps = 0
    while runner.step():
        steps += 1
        assert steps < limit
    return steps


def test_a_drop_needs_an_active_campaign_and_valid_fields(
    marketer: Marketer, sessions: Callable[[], Session]
) -> None:
    draft = marketer.call("POST", "/v1/campaigns", campaign_body(utcnow())).get_json()
    answer = marketer.drop(draft["campaign_id"], {})
    assert answer.status_code == 409
    assert answer.content_type == "application/problem+json"
    campaign = active_campaign(sessions, utcnow())
    bad = {
        "max_messages": 0,
        "send_after": "tomorrow",
        "quiet_hours": {"start": "25:00", "end": "8am", "timezone": "Mars/Olympus"},
        "audience": {"languages": ["xx"]},
    }
    answer = marketer.drop(campaign.campaign_id, bad)
    assert answer.status_code == 422
    fields = {e["field"] for e in answer.get_json()["errors"]}
    assert {
        "max_messages",
        "send_after",
        "quiet_hours.start",
        "quiet_hours.end",
        "quiet_hours.timezone",
    } <= fields
    assert any(f.startswith("audience.languages") for f in fields)
    assert (
        marketer.call("GET", f"/v1/campaigns/{campaign.campaign_id}/drops/nope").status_code == 404
    )


def test_a_dry_run_estimates_and_sends_nothing(
    marketer: Marketer, engine: Engine, sessions: Callable[[], Session]
) -> None:
    campaign = active_campaign(sessions, utcnow(), holdout_pct=20, message_cost=3)
    ok = _followers(sessions, 40)
    _followers(sessions, 5, opted_out=True)
    _followers(sessions, 5, following=False)
    before = len(_events(sessions, "offer.requested"))
    answer = marketer.drop(campaign.campaign_id, {"dry_run": True, "max_messages": 1000})
    assert answer.status_code == 200, answer.get_json()
    estimate = answer.get_json()
    holdout = sum(in_holdout(c, campaign.campaign_id, engine.holdout_key, 20) for c in ok)
    assert estimate["eligible"] == 40
    assert estimate["holdout"] == holdout
    assert estimate["expected_coupons"] == 40 - holdout
    assert estimate["expected_message_cost"] == (40 - holdout) * 3
    assert estimate["broadcast_cost"] == 40 * 3
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Drop)) == 0
    assert len(_events(sessions, "offer.requested")) == before
    assert len(_events(sessions, "drop.queued")) == 0


def test_the_runner_asks_once_per_eligible_follower_and_resumes_after_a_crash(
    marketer: Marketer, sessions: Callable[[], Session]
) -> None:
    campaign = active_campaign(sessions, utcnow())
    ok = _followers(sessions, 25)
    _followers(sessions, 3, opted_out=True)
    answer = marketer.drop(campaign.campaign_id, {"quiet_hours": None})
    assert answer.status_code == 202, answer.get_json()
    drop_id = answer.get_json()["drop_id"]
    assert answer.get_json()["status"] == "queued"
    clock = [utcnow()]
    first = DropRunner(sessions, page_size=10, lease_s=30, clock=lambda: clock[0])
    assert first.step()  # one page of 10, then the runner "dies" holding its lease
    other = DropRunner(sessions, page_size=10, lease_s=30, clock=lambda: clock[0])
    assert not other.step()  # the lease keeps a second runner off the drop
    clock[0] += timedelta(seconds=31)
    _page_all(other)
    assert not first.step()  # the drop is paged: nothing more to ask
    with sessions() as session:
        members = session.scalars(select(DropMember).where(DropMember.drop_id == drop_id)).all()
    assert sorted(m.customer_id for m in members) == sorted(ok)
    asked = [e for e in _events(sessions, "offer.requested") if e.payload["drop_id"] == drop_id]
    assert len(asked) == 25
    assert {e.payload["request_id"] for e in asked} == {drop_request_id(drop_id, c) for c in ok}
    got = marketer.call("GET", f"/v1/campaigns/{campaign.campaign_id}/drops/{drop_id}").get_json()
    assert (got["eligible"], got["decided"], got["remaining"]) == (25, 0, 25)
    assert got["status"] == "running"


def test_max_messages_pages_only_what_may_be_pushed(sessions: Callable[[], Session]) -> None:
    campaign = active_campaign(sessions, utcnow())
    _followers(sessions, 30)
    drop = _queue(sessions, campaign, max_messages=4)
    runner = DropRunner(sessions, page_size=10)
    assert runner.step()
    assert not runner.step()  # waits for the 4 members' decisions
    with sessions() as session:
        members = session.scalars(select(DropMember).where(DropMember.drop_id == drop)).all()
    assert len(members) == 4
    _decide(sessions, members[:3], coupon=True)
    _decide(sessions, members[3:], coupon=False)
    assert runner.step()  # one more coupon may go: one more member
    with sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(DropMember).where(DropMember.drop_id == drop)
        )
    assert count == 5


def test_cancel_stops_the_runner_and_announces_it(
    marketer: Marketer, sessions: Callable[[], Session]
) -> None:
    campaign = active_campaign(sessions, utcnow())
    _followers(sessions, 30)
    drop_id = marketer.drop(campaign.campaign_id, {}).get_json()["drop_id"]
    runner = DropRunner(sessions, page_size=10)
    assert runner.step()
    path = f"/v1/campaigns/{campaign.campaign_id}/drops/{drop_id}"
    answer = marketer.call("POST", f"{path}/cancel")
    assert answer.status_code == 200 and answer.get_json()["status"] == "cancelled"
    assert not runner.step()
    with sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(DropMember).where(DropMember.drop_id == drop_id)
        )
    assert count == 10
    assert [e.payload["drop_id"] for e in _events(sessions, "drop.cancelled")] == [drop_id]
    listed = marketer.call("GET", f"/v1/campaigns/{campaign.campaign_id}/drops").get_json()
    assert [d["drop_id"] for d in listed["items"]] == [drop_id]


def test_counts_and_report_join_decisions_and_deliveries(
    marketer: Marketer, sessions: Callable[[], Session]
) -> None:
    campaign = active_campaign(sessions, utcnow(), message_cost=5)
    _followers(sessions, 10)
    drop_id = _queue(sessions, campaign)
    _page_all(DropRunner(sessions, page_size=100))
    with sessions() as session:
        members = session.scalars(select(DropMember).where(DropMember.drop_id == drop_id)).all()
    _decide(sessions, members[:6], coupon=True)
    _decide(sessions, members[6:8], coupon=False, arm="holdout")
    _decide(sessions, members[8:], coupon=False)
    for m in members[:5]:
        _report(sessions, campaign.campaign_id, m, delivered=True)
        _report(sessions, campaign.campaign_id, m, delivered=True)  # another event, same push
    _report(sessions, campaign.campaign_id, members[5], delivered=False)
    got = marketer.call("GET", f"/v1/campaigns/{campaign.campaign_id}/drops/{drop_id}").get_json()
    assert {k: got[k] for k in ("eligible", "decided", "coupons", "holdout", "no_coupon")} == {
        "eligible": 10,
        "decided": 10,
        "coupons": 6,
        "holdout": 2,
        "no_coupon": 2,
    }
    assert (got["pushed"], got["failed"], got["remaining"], got["status"]) == (5, 1, 0, "done")
    assert got["report"] == {
        "message_cost": 5,
        "messages_sent": 5,
        "broadcast_messages": 10,
        "messages_saved": 5,
        "cost": 25,
        "broadcast_cost": 50,
        "cost_saved": 25,
    }


def test_tallies_follow_each_members_latest_state_once(
    marketer: Marketer, sessions: Callable[[], Session]
) -> None:
    """A report applied again counts nothing; a member whose push failed and then went out
    moves from failed to pushed; a report about someone the drop never asked counts
    nothing. The tallies equal a recount from the members throughout."""
    campaign = active_campaign(sessions, utcnow())
    _followers(sessions, 4)
    drop_id = _queue(sessions, campaign)
    _page_all(DropRunner(sessions, page_size=100))
    with sessions() as session:
        members = session.scalars(select(DropMember).where(DropMember.drop_id == drop_id)).all()
    _decide(sessions, members, coupon=True)
    again = _report(sessions, campaign.campaign_id, members[0], delivered=True)
    record_drop_delivery(again, sessions=sessions)  # redelivered: the same event
    _report(sessions, campaign.campaign_id, members[1], delivered=False)
    _report(sessions, campaign.campaign_id, members[1], delivered=True)  # retried, sent
    _report(sessions, campaign.campaign_id, members[2], delivered=False)
    stranger = DropMember(drop_id=drop_id, customer_id="c_never_asked", request_id="r-none")
    _report(sessions, campaign.campaign_id, stranger, delivered=True)
    with sessions() as session:
        drop = session.get(Drop, drop_id)
        assert drop is not None
        tallied = counts(session, drop)
        assert tallied == recount(session, drop_id)
    assert (tallied.pushed, tallied.failed, tallied.skipped) == (2, 1, 0)
    got = marketer.call("GET", f"/v1/campaigns/{campaign.campaign_id}/drops/{drop_id}").get_json()
    assert (got["decided"], got["pushed"], got["failed"], got["remaining"]) == (4, 2, 1, 1)


def test_quiet_hours_show_as_waiting(marketer: Marketer, sessions: Callable[[], Session]) -> None:
    campaign = active_campaign(sessions, utcnow())
    now = utcnow()
    # A window around now in UTC: the drop waits.
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "timezone": "UTC",
    }
    got = marketer.drop(campaign.campaign_id, {"quiet_hours": quiet}).get_json()
    assert got["status"] == "waiting_quiet_hours"


# --- helpers -------------------------------------------------------------------------


def _queue(sessions: Callable[[], Session], campaign: Campaign, **fields: Any) -> str:
    from services.campaign_engine.drops.commands import queue_drop
    from services.campaign_engine.drops.schemas import DropIn

    with unit_of_work(sessions) as session:
        row = session.get(Campaign, campaign.number)
        assert row is not None
        drop = queue_drop(session, row, DropIn.model_validate(fields), utcnow())
        return drop.drop_id


def _decide(
    sessions: Callable[[], Session],
    members: Sequence[DropMember],
    *,
    coupon: bool,
    arm: str | None = None,
) -> None:
    """Store the members' decisions as the decision path does: the decision rows and, in
    the same transaction, the drop's tallies (decisions/decide.py)."""
    now: datetime = utcnow()
    chosen = arm or ("treatment" if coupon else "none")
    with unit_of_work(sessions) as session:
        for m in members:
            session.add(
                Decision(
                    decision_id=str(uuid.uuid4()),
                    request_id=m.request_id,
                    customer_id=m.customer_id,
                    arm=chosen,
                    propensity=1.0,
                    model_version="test",
                    coupon_code=f"TN-{uuid.uuid4().hex[:12]}" if coupon else None,
                    decided_at=now,
                )
            )
        decided = [(m.drop_id, chosen, coupon) for m in members]
        drop_tallies.add(session, drop_tallies.decision_deltas(decided))


def _report(
    sessions: Callable[[], Session], campaign_id: str, member: DropMember, *, delivered: bool
) -> Envelope:
    fields = {
        "code": "TN-X",
        "customer_id": member.customer_id,
        "campaign_id": campaign_id,
        "request_id": member.request_id,
        "drop_id": member.drop_id,
    }
    payload: Any = (
        CouponDelivered(channel="push", **fields)
        if delivered
        else CouponDeliveryFailed(reason="400 bad request", **fields)
    )
    kind = "coupon.delivered" if delivered else "coupon.delivery_failed"
    envelope = make_event(kind, payload, key=member.customer_id, producer="chat_agent")
    record_drop_delivery(envelope, sessions=sessions)
    return envelope


def test_a_customers_till_offset_goes_with_their_drop_request(
    marketer: Marketer, engine: Engine, sessions: Callable[[], Session]
) -> None:
    campaign = active_campaign(sessions, utcnow())
    in_delhi, unknown = _followers(sessions, 2)
    sale = {
        "customer_id": in_delhi,
        "transaction_id": f"t-{uuid.uuid4().hex[:8]}",
        "store_id": "S001",
        "total": 500,
        "categories": [],
        "occurred_at": "2026-11-29T10:15:00+05:30",  # as the till wrote it
    }
    consumer_handler(handlers(engine), UPDATE_TYPES)(
        make_event("sale.recorded", sale, key=in_delhi, producer="redemption_tracker")
    )
    now = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)  # 09:30 in Delhi, 13:00 in Tokyo
    drop_id = marketer.drop(campaign.campaign_id, {}).get_json()["drop_id"]
    _page_all(DropRunner(sessions, clock=lambda: now))
    asked = {
        e.payload["customer_id"]: e.payload
        for e in _events(sessions, "offer.requested")
        if e.payload["drop_id"] == drop_id
    }
    assert asked[in_delhi]["utc_offset_minutes"] == 330
    assert asked[in_delhi]["context"]["local_hour"] == 9
    assert asked[unknown]["utc_offset_minutes"] is None
    assert asked[unknown]["context"]["local_hour"] == 13  # the drop's zone (Asia/Tokyo)
