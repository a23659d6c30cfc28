"""Pacing and message cost on real PostgreSQL and Redis: the campaign fields through the API
and its events, and an evenly paced campaign held to its share with a controlled clock."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.campaign_engine.bootstrap import Engine
from services.campaign_engine.campaigns.commands import find_campaign
from services.campaign_engine.decisions.policy import PolicyConfig
from services.campaign_engine.models import Decision
from shared.db import unit_of_work, utcnow
from shared.events import Envelope, make_event
from tests.integration.campaign_engine import test_api as api_tests
from tests.integration.campaign_engine.test_api import Api, outbox_events
from tests.unit.campaign_engine.fakes import active_campaign, campaign_body, offer_request

# The marketer API's fixtures (a module-scoped app, keys and a client), shared, not copied.
app, keys, db_sessions, api = api_tests.app, api_tests.keys, api_tests.db_sessions, api_tests.api

START = datetime(2026, 12, 1, tzinfo=UTC)
WINDOW = timedelta(days=10)


def unpaced_body(**over: Any) -> dict[str, Any]:
    """A campaign body that says nothing of pacing or message cost (the API's defaults)."""
    body = campaign_body(utcnow())
    del body["pacing"]
    return {**body, **over}


def test_new_campaigns_are_evenly_paced_with_free_messages_by_default(api: Api) -> None:
    response = api.call("POST", "/v1/campaigns", unpaced_body())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["pacing"], body["message_cost"]) == ("even", 0)
    explicit = api.create(pacing="asap", message_cost=3)
    assert (explicit["pacing"], explicit["message_cost"]) == ("asap", 3)
    got = api.call("GET", f"/v1/campaigns/{explicit['campaign_id']}").get_json()
    assert (got["pacing"], got["message_cost"]) == ("asap", 3)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pacing": "slow"}, "pacing"),
        ({"pacing": 1}, "pacing"),
        ({"pacing": None}, "pacing"),
        ({"message_cost": -1}, "message_cost"),
        ({"message_cost": "5"}, "message_cost"),
        ({"message_cost": 1.5}, "message_cost"),
        ({"message_cost": True}, "message_cost"),
        ({"message_cost": 10**13}, "message_cost"),
    ],
)
def test_a_bad_pacing_or_message_cost_is_a_422_naming_the_field(
    api: Api, change: dict[str, Any], field: str
) -> None:
    created = api.call("POST", "/v1/campaigns", unpaced_body(**change))
    assert created.status_code == 422 and created.mimetype == "application/problem+json"
    assert [e["field"] for e in created.get_json()["errors"]] == [field]
    draft = api.create()
    patched = api.call("PATCH", f"/v1/campaigns/{draft['campaign_id']}", change)
    assert patched.status_code == 422, patched.get_json()
    assert [e["field"] for e in patched.get_json()["errors"]] == [field]


def test_an_active_campaign_may_change_pacing_and_message_cost_and_says_so(
    api: Api, db_sessions: Callable[[], Session]
) -> None:
    cid = api.create(pacing="asap")["campaign_id"]
    assert api.act(cid, "activate").status_code == 200
    changed = api.call("PATCH", f"/v1/campaigns/{cid}", {"pacing": "even", "message_cost": 3})
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["pacing"], changed.get_json()["message_cost"]) == ("even", 3)
    activated, patched = (e.payload["campaign"] for e in outbox_events(db_sessions, cid))
    assert (activated["pacing"], activated["message_cost"]) == ("asap", 0)
    assert (patched["pacing"], patched["message_cost"]) == ("even", 3)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def decide_many(engine: Engine, n: int) -> Counter[str | None]:
    return Counter(engine.decide(offer_request()).reason for _ in range(n))


def reasons_logged(sessions: Callable[[], Session]) -> Counter[tuple[str, str | None]]:
    with sessions() as session:
        return Counter(
            (arm, reason) for arm, reason in session.execute(select(Decision.arm, Decision.reason))
        )


def paced_engine(
    make_engine_for: Callable[..., Engine], pacing: str = "even"
) -> tuple[Engine, Clock]:
    """An engine at half-time of a 20-coupon campaign's window, with no pacing slack."""
    clock = Clock(START + WINDOW / 2)
    engine = make_engine_for(clock=clock, policy=PolicyConfig(mode="greedy", pacing_slack=0.0))
    active_campaign(
        engine.sessions,
        clock.now,
        starts_at=START.isoformat(),
        ends_at=(START + WINDOW).isoformat(),
        budget={"max_coupons": 20},
        pacing=pacing,
    )
    return engine, clock


def test_pacing_holds_within_one_batch_of_decisions(
    make_engine_for: Callable[..., Engine],
) -> None:
    """The batch reads usage once for all its requests: pacing must hold in the reservation."""
    engine, _ = paced_engine(make_engine_for)
    decided = engine.decide_batch([offer_request() for _ in range(30)])
    assert Counter(d.reason for d in decided if d is not None) == Counter(
        {"exploit": 10, "paced": 20}
    )


@pytest.mark.parametrize("pacing", ["even", "asap"])
def test_an_even_campaign_is_held_to_its_share_of_the_window_and_asap_is_not(
    make_engine_for: Callable[..., Engine], pacing: str
) -> None:
    engine, clock = paced_engine(make_engine_for, pacing)
    halfway = decide_many(engine, 15)
    clock.now = START + WINDOW * 3 / 4
    three_quarters = decide_many(engine, 10)
    if pacing == "even":
        # Half the window: 10 of 20 coupons; three quarters: 15.
        assert halfway == Counter({"exploit": 10, "paced": 5})
        assert three_quarters == Counter({"exploit": 5, "paced": 5})
        assert reasons_logged(engine.sessions)[("none", "paced")] == 10
    else:
        assert halfway == Counter({"exploit": 15})
        assert three_quarters == Counter({"exploit": 5, "budget_exhausted": 5})


def pushed(envelope: Envelope) -> Envelope:
    """The same request as a campaign drop asks it (its coupon would go out as a push)."""
    payload = {**envelope.payload, "drop_id": str(uuid.uuid4())}
    return make_event("offer.requested", payload, key=envelope.key, producer="campaign_engine")


def test_a_drop_pushes_only_where_the_gain_covers_coupon_and_message(
    engine: Engine, sessions: Callable[[], Session]
) -> None:
    # EV of the ¥50 coupon at P(redeem) 0.5: 0.5 x (0.3 x ¥750 - ¥50) = ¥87.5.
    campaign = active_campaign(sessions, utcnow(), message_cost=100)
    reply = engine.decide(offer_request())
    push = engine.decide(pushed(offer_request()))
    assert reply is not None and reply.coupon_code and reply.reason == "exploit"
    assert push is not None and push.coupon_code is None
    assert push.reason == "policy_chose_none"
    assert push.candidates is not None and push.candidates[0]["ev"] == -12.5
    with unit_of_work(sessions) as session:
        found = find_campaign(session, campaign.campaign_id)
        assert found is not None
        found.message_cost = 80
        found.revision += 1
    cheaper = engine.decide(pushed(offer_request()))
    assert cheaper is not None and cheaper.coupon_code and cheaper.candidates is not None
    assert cheaper.candidates[0]["ev"] == 7.5
