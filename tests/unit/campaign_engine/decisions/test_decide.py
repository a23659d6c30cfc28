"""decide_offer edge to edge with fakes: every outcome is one stored decision and one event."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.campaign_engine.bootstrap import holdout_key
from services.campaign_engine.budget.in_memory import InMemoryReservations
from services.campaign_engine.campaigns.commands import (
    apply_patch,
    change_status,
    find_campaign,
    patched_body,
)
from services.campaign_engine.campaigns.schemas import CampaignIn, CampaignPatch
from services.campaign_engine.decisions.policy import in_holdout
from services.campaign_engine.models import Coupon, Customer, Decision, Outbox
from shared.coupons import coupon_key, verify_code
from shared.db import unit_of_work
from shared.events import Envelope, decode
from shared.model.features import N_FEATURES
from tests.unit.campaign_engine.conftest import SECRET
from tests.unit.campaign_engine.fakes import (
    NOW,
    ConstantScorer,
    FakeFeatures,
    active_campaign,
    offer_request,
)

Decide = Callable[[Envelope], Any]


def events(sessions: Callable[[], Session], event_type: str) -> list[dict[str, Any]]:
    with sessions() as session:
        bodies = session.execute(select(Outbox.body).order_by(Outbox.id)).scalars().all()
    return [e.payload for e in map(lambda b: decode(b.encode()), bodies) if e.type == event_type]


def decisions(sessions: Callable[[], Session]) -> list[Decision]:
    with sessions() as session:
        return list(session.execute(select(Decision)).scalars())


def test_a_customer_gets_a_signed_coupon_and_the_decision_is_logged(
    decide: Decide,
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
    features: FakeFeatures,
) -> None:
    campaign = active_campaign(sessions)
    request = offer_request()
    decision = decide(request)

    assert decision.arm == "treatment" and decision.campaign_id == campaign.campaign_id
    claims = verify_code(coupon_key(SECRET), decision.coupon_code)
    assert (claims.campaign_no, claims.offer_index, claims.serial) == (campaign.number, 0, 1)
    assert claims.expires_at == decision.expires_at
    logged = json.loads(decision.features)
    [vector] = logged["candidates"]
    assert logged["chosen"] == 0 and decision.reason == "exploit"
    assert len(vector) == N_FEATURES and all(isinstance(v, float) for v in vector)
    [candidate] = decision.candidates
    assert candidate["offer_id"] == campaign.offers[0]["offer_id"] and candidate["p"] == 1.0
    [event] = events(sessions, "offer.decided")
    assert event["coupon"]["code"] == decision.coupon_code and event["reason"] is None
    assert event["offer_id"] == campaign.offers[0]["offer_id"]
    assert event["model_version"] == "constant-test"
    usage = reservations.usage(campaign.campaign_id, request.key, "20261129")
    assert usage is not None and (usage.issued, usage.money) == (1, 50)
    assert features.calls[("issued", request.key)] == 1


def test_holdout_customers_get_nothing_but_a_logged_decision(
    decide: Decide,
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
) -> None:
    campaign = active_campaign(sessions, holdout_pct=100)
    decision = decide(offer_request())
    assert (decision.arm, decision.campaign_id, decision.coupon_code) == (
        "holdout",
        campaign.campaign_id,
        None,
    )
    # The holdout keeps the features of the offer it was held back from: the uplift control.
    assert json.loads(decision.features)["chosen"] == 0 and decision.offer_id is None
    assert decision.reason == "holdout"
    [event] = events(sessions, "offer.decided")
    assert (event["arm"], event["reason"], event["coupon"]) == ("holdout", "holdout", None)
    assert reservations.budgets[campaign.campaign_id]["issued"] == 0


def test_holdout_follows_the_keyed_hash_and_is_stable_per_customer(
    decide: Decide,
    sessions: Callable[[], Session],
) -> None:
    campaign = active_campaign(sessions, holdout_pct=30)
    key = holdout_key(SECRET)
    arms = {}
    for i in range(80):
        customer = f"c_holdout_{i}"
        arms[customer] = {decide(offer_request(customer)).arm for _ in range(2)}
    for customer, seen in arms.items():
        expected = "holdout" if in_holdout(customer, campaign.campaign_id, key, 30) else "treatment"
        assert seen == {expected}
    assert 8 < sum(s == {"holdout"} for s in arms.values()) < 40


def test_the_holdout_share_matches_holdout_pct_over_10000_customers() -> None:
    key = holdout_key(SECRET)
    for pct in (5.0, 10.0, 50.0):
        held = sum(in_holdout(f"c_{i:05d}", "cmp-holdout-share", key, pct) for i in range(10_000))
        p = pct / 100
        sigma = (10_000 * p * (1 - p)) ** 0.5
        assert abs(held - 10_000 * p) < 4 * sigma, (pct, held)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("nothing", "no_active_campaign"),
        ("opted_out", "opted_out"),
        ("audience", "no_eligible_offer"),
        ("negative_value", "policy_chose_none"),
        ("model_broken", "model_error"),
        ("redis_down", "redis_unavailable"),
    ],
)
def test_every_no_coupon_outcome_is_a_decision_with_its_reason(
    decide: Decide,
    sessions: Callable[[], Session],
    features: FakeFeatures,
    reservations: InMemoryReservations,
    scorer: ConstantScorer,
    setup: str,
    reason: str,
) -> None:
    request = offer_request()
    if setup != "nothing":
        offer = {
            "title": "t",
            "discount": {"type": "amount", "value": 400 if setup == "negative_value" else 50},
            "applies_to": {"skus": ["4901"]},
        }
        active_campaign(
            sessions,
            offers=[offer],
            audience={"languages": ["en"]} if setup == "audience" else None,
        )
    if setup == "opted_out":
        with unit_of_work(sessions) as session:
            session.add(Customer(customer_id=request.key, opted_out=True))
    scorer.broken = setup == "model_broken"
    features.down = reservations.down = setup == "redis_down"

    decision = decide(request)

    assert (decision.arm, decision.coupon_code, decision.campaign_id) == ("none", None, None)
    [event] = events(sessions, "offer.decided")
    assert (event["arm"], event["reason"], event["coupon"]) == ("none", reason, None)


def test_the_budget_runs_out_and_is_announced_once(
    decide: Decide,
    sessions: Callable[[], Session],
) -> None:
    campaign = active_campaign(sessions, budget={"max_coupons": 2})
    arms = [decide(offer_request()).arm for _ in range(4)]
    assert arms == ["treatment", "treatment", "none", "none"]
    assert [e["reason"] for e in events(sessions, "offer.decided")][2:] == ["budget_exhausted"] * 2
    assert events(sessions, "campaign.budget_exhausted") == [
        {"campaign_id": campaign.campaign_id, "budget": "max_coupons"}
    ]


def test_the_money_budget_counts_face_values(
    decide: Decide, sessions: Callable[[], Session]
) -> None:
    campaign = active_campaign(sessions, budget={"max_coupons": 100, "max_discount_total": 120})
    assert [decide(offer_request()).arm for _ in range(3)] == ["treatment", "treatment", "none"]
    assert events(sessions, "campaign.budget_exhausted") == [
        {"campaign_id": campaign.campaign_id, "budget": "max_discount_total"}
    ]


def test_per_customer_caps_hold(decide: Decide, sessions: Callable[[], Session]) -> None:
    active_campaign(sessions, caps={"per_customer_per_day": 1, "per_customer_total": 5})
    customer = "c_capped"
    assert [decide(offer_request(customer)).arm for _ in range(3)] == ["treatment", "none", "none"]
    assert [e["reason"] for e in events(sessions, "offer.decided")] == [
        None,
        "cap_reached",
        "cap_reached",
    ]
    assert decide(offer_request("c_other")).arm == "treatment"


def test_a_redelivered_request_yields_one_decision_and_one_coupon(
    decide: Decide,
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
) -> None:
    campaign = active_campaign(sessions)
    request = offer_request()
    first = decide(request)
    assert decide(request) is None
    resent = offer_request(
        request.key, request_id=json.loads(request.model_dump_json())["payload"]["request_id"]
    )
    assert decide(resent) is None
    assert [d.decision_id for d in decisions(sessions)] == [first.decision_id]
    assert len(events(sessions, "offer.decided")) == 1
    assert reservations.budgets[campaign.campaign_id]["issued"] == 1


def test_a_reservation_is_released_when_the_decision_cannot_commit(
    decide: Decide,
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
) -> None:
    campaign = active_campaign(
        sessions, caps={"per_customer_per_day": 1, "per_customer_total": None}
    )
    with unit_of_work(sessions) as session:
        session.execute(text("DROP TABLE campaign_engine.outbox"))
    request = offer_request()
    with pytest.raises(Exception, match="outbox"):
        decide(request)
    usage = reservations.usage(campaign.campaign_id, request.key, "20261129")
    assert usage is not None
    assert (usage.issued, usage.money, usage.customer_day, usage.customer_total) == (0, 0, 0, 0)
    assert decisions(sessions) == []
    with sessions() as session:
        assert session.execute(select(Coupon)).first() is None


def test_a_lost_redis_is_reseeded_from_the_database(
    decide: Decide,
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
) -> None:
    campaign = active_campaign(
        sessions,
        budget={"max_coupons": 3},
        caps={"per_customer_per_day": 1, "per_customer_total": None},
    )
    codes = {decide(offer_request("c_a")).coupon_code, decide(offer_request("c_b")).coupon_code}
    reservations.budgets.clear()
    reservations.counters.clear()  # Redis restarted empty

    assert decide(offer_request("c_a")).arm == "none"  # c_a's daily cap survived
    third = decide(offer_request("c_c"))
    assert third.arm == "treatment" and third.coupon_code not in codes
    assert verify_code(coupon_key(SECRET), third.coupon_code).serial == 3
    assert decide(offer_request("c_d")).arm == "none"  # and so did the budget
    assert reservations.budgets[campaign.campaign_id]["issued"] == 3


def test_the_clock_sets_decided_at(decide: Decide, sessions: Callable[[], Session]) -> None:
    active_campaign(sessions)
    assert decide(offer_request()).decided_at == NOW


def test_engines_see_a_campaign_change_at_once(
    decide: Decide, sessions: Callable[[], Session]
) -> None:
    campaign = active_campaign(sessions)
    assert decide(offer_request()).arm == "treatment"  # the campaign is now cached
    body = CampaignPatch.model_validate(
        {
            "offers": [
                {
                    "offer_id": campaign.offers[0]["offer_id"],
                    "title": "30 off",
                    "applies_to": {"categories": ["onigiri"]},
                    "discount": {"type": "amount", "value": 30},
                }
            ]
        }
    )
    with unit_of_work(sessions) as session:
        live = find_campaign(session, campaign.campaign_id, lock=True)
        assert live is not None
        apply_patch(session, live, CampaignIn.model_validate(patched_body(live, body)), body, NOW)
    assert decide(offer_request()).coupon_code
    assert events(sessions, "offer.decided")[-1]["coupon"]["discount"] == {
        "type": "amount",
        "value": 30,
    }
    with unit_of_work(sessions) as session:
        live = find_campaign(session, campaign.campaign_id, lock=True)
        assert live is not None
        change_status(session, live, "pause", NOW)  # same instant: only the revision tells
    assert decide(offer_request()).arm == "none"
    assert events(sessions, "offer.decided")[-1]["reason"] == "no_active_campaign"


class FixedUplift:
    """A T-learner stand-in: the same expected spends for every offer."""

    model_version = "uplift-test"

    def __init__(self, treated: float, control: float) -> None:
        self.treated, self.control = treated, control

    def maybe_reload(self) -> bool:
        return False

    def score(self, matrix: Any) -> tuple[Any, Any]:
        import numpy as np

        return np.full(len(matrix), self.treated), np.full(len(matrix), self.control)


@pytest.mark.parametrize(
    ("treated", "control", "coupon"), [(100.0, 500.0, False), (5000.0, 100.0, True)]
)
def test_the_uplift_scorer_decides_when_the_policy_asks_for_it(
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
    features: FakeFeatures,
    treated: float,
    control: float,
    coupon: bool,
) -> None:
    """With TENIN_POLICY=uplift the T-learner's expected spends, not P(redeem), decide."""
    from services.campaign_engine.decisions.decide import decide_offer
    from services.campaign_engine.decisions.inputs import ActiveCampaigns
    from services.campaign_engine.decisions.policy import PolicyConfig

    active_campaign(sessions)
    decision = decide_offer(
        offer_request(),
        sessions=sessions,
        reservations=reservations,
        features=features,
        scorer=ConstantScorer(),
        policy=PolicyConfig(mode="greedy", uplift=True),
        coupon_key=coupon_key(SECRET),
        holdout_key=holdout_key(SECRET),
        clock=lambda: NOW,
        campaigns=ActiveCampaigns(),
        uplift_scorer=FixedUplift(treated, control),
    )
    assert decision is not None
    assert (decision.coupon_code is not None) is coupon
