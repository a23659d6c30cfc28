"""The update handlers: consent, features and budget usage, each applied once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.campaign_engine.budget.in_memory import InMemoryReservations
from services.campaign_engine.features.markers import Markers
from services.campaign_engine.features.store import FeatureUpdates
from services.campaign_engine.handlers import UPDATE_TYPES, consumer_handler, update_handlers
from services.campaign_engine.models import Customer, Outbox, RedemptionSeen
from shared.events import Envelope, decode, make_event
from tests.unit.campaign_engine.fakes import (
    NOW,
    FakeFeatures,
    FakeMarkers,
    active_campaign,
    offer_request,
)

Decide = Callable[[Envelope], Any]


def apply_update(
    envelope: Envelope,
    *,
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
    features: FeatureUpdates,
    markers: Markers,
) -> None:
    """What the updates consumer group runs: the registry's handler for the event's type."""
    registry = update_handlers(
        sessions=sessions, reservations=reservations, features=features, markers=markers
    )
    consumer_handler(registry, UPDATE_TYPES)(envelope)


def event(event_type: str, payload: dict[str, Any], key: str) -> Envelope:
    return make_event(event_type, payload, key=key, producer="test", occurred_at=NOW)


def test_a_redelivered_sale_is_counted_once(
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
    features: FakeFeatures,
    markers: FakeMarkers,
) -> None:
    sale = event(
        "sale.recorded",
        {
            "customer_id": "c1",
            "transaction_id": "t1",
            "store_id": "S001",
            "total": 640,
            "categories": ["onigiri"],
            "occurred_at": NOW.isoformat(),
        },
        "c1",
    )
    for _ in range(3):
        apply_update(
            sale, sessions=sessions, reservations=reservations, features=features, markers=markers
        )
    assert features.calls[("sale", "c1")] == 1


def test_a_redis_effect_done_before_a_failed_commit_is_not_repeated(
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
    features: FakeFeatures,
    markers: FakeMarkers,
) -> None:
    sale = event(
        "sale.recorded",
        {
            "customer_id": "c1",
            "transaction_id": "t1",
            "store_id": "S001",
            "total": 640,
            "categories": [],
            "occurred_at": NOW.isoformat(),
        },
        "c1",
    )
    markers.mark(
        f"ce:fx:{sale.event_id}"
    )  # the first attempt reached Redis, then its commit failed
    apply_update(
        sale, sessions=sessions, reservations=reservations, features=features, markers=markers
    )
    assert features.calls[("sale", "c1")] == 0


def test_opting_out_and_back_in_decides_eligibility(
    decide: Decide,
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
    features: FakeFeatures,
    markers: FakeMarkers,
) -> None:
    active_campaign(sessions)
    deps = {
        "sessions": sessions,
        "reservations": reservations,
        "features": features,
        "markers": markers,
    }
    apply_update(event("customer.followed", {"customer_id": "c1", "language": "en"}, "c1"), **deps)
    apply_update(
        event("customer.linked", {"customer_id": "c1", "member_hash": "f" * 64}, "c1"), **deps
    )
    # Asks and consent in the order they were made (occurred_at: now, as the chat agent stamps).
    asked_before_opting_out = offer_request("c1")
    opted_out = make_event("customer.opted_out", {"customer_id": "c1"}, key="c1", producer="t")
    apply_update(opted_out, **deps)
    assert decide(asked_before_opting_out).arm == "none"
    opted_in = make_event("customer.opted_in", {"customer_id": "c1"}, key="c1", producer="t")
    apply_update(opted_in, **deps)
    assert decide(offer_request("c1")).arm == "treatment"
    with sessions() as session:
        customer = session.get(Customer, "c1")
        assert customer is not None
        assert (customer.language, customer.linked, customer.opted_out) == ("en", True, False)
        assert customer.consent_at == opted_in.occurred_at
    assert features.calls[("follow", "c1")] == 1 and features.calls[("linked", "c1")] == 1


def test_redemptions_settle_the_money_budget_and_voids_undo_them(
    decide: Decide,
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
    features: FakeFeatures,
    markers: FakeMarkers,
) -> None:
    offer = {
        "title": "10% off",
        "discount": {"type": "percent", "value": 10},
        "applies_to": {"categories": ["bento"]},
    }
    campaign = active_campaign(
        sessions, offers=[offer], budget={"max_coupons": 10, "max_redemptions": 1}
    )
    decision = decide(offer_request("c1"))
    budget = reservations.budgets[campaign.campaign_id]
    assert (budget["issued"], budget["money"]) == (1, 75)  # 10% of a typical 750 yen basket

    deps = {
        "sessions": sessions,
        "reservations": reservations,
        "features": features,
        "markers": markers,
    }
    common = {
        "code": decision.coupon_code,
        "customer_id": "c1",
        "campaign_id": campaign.campaign_id,
        "offer_id": decision.offer_id,
        "transaction_id": "t-1",
        "store_id": "S001",
    }
    as_typed = decision.coupon_code.lower().replace("-", " ")  # the tracker may pass it on as typed
    redeemed = event(
        "coupon.redeemed", {**common, "code": as_typed, "discount": 128, "basket_total": 1280}, "c1"
    )
    apply_update(redeemed, **deps)
    apply_update(redeemed, **deps)
    assert (budget["redeemed"], budget["money"]) == (1, 128)
    with sessions() as session:
        [row] = session.execute(select(RedemptionSeen)).scalars()
        assert (row.coupon_code, row.voided, row.discount) == (decision.coupon_code, False, 128)
        exhausted = [decode(b.encode()) for b in session.execute(select(Outbox.body)).scalars()]
    assert [e.payload for e in exhausted if e.type == "campaign.budget_exhausted"] == [
        {"campaign_id": campaign.campaign_id, "budget": "max_redemptions"}
    ]
    assert decide(offer_request("c2")).arm == "none"  # no redemptions left to give

    voided = event("coupon.voided", {**common, "discount": 128}, "c1")
    apply_update(voided, **deps)
    apply_update(voided, **deps)
    assert (budget["redeemed"], budget["money"]) == (0, 75)
    with sessions() as session:
        assert session.execute(select(RedemptionSeen.voided)).scalar_one() is True
    assert features.calls[("redeemed", "c1")] == 1 and features.calls[("voided", "c1")] == 1
    assert decide(offer_request("c3")).arm == "treatment"


def test_events_that_are_not_ours_are_ignored(
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
    features: FakeFeatures,
    markers: FakeMarkers,
) -> None:
    rejected = event(
        "coupon.redemption_rejected",
        {
            "code": "TN-X",
            "reason": "forged",
            "customer_id": None,
            "campaign_id": None,
            "transaction_id": str(uuid.uuid4()),
            "store_id": "S001",
        },
        "S001",
    )
    apply_update(
        rejected, sessions=sessions, reservations=reservations, features=features, markers=markers
    )
    assert not features.calls


def test_decisions_after_midnight_in_the_campaign_zone_reset_daily_caps(
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
    features: FakeFeatures,
    scorer: Any,
) -> None:
    from services.campaign_engine.bootstrap import holdout_key
    from services.campaign_engine.decisions.decide import decide_offer
    from services.campaign_engine.decisions.policy import PolicyConfig
    from shared.coupons import coupon_key

    active_campaign(
        sessions,
        caps={"per_customer_per_day": 1, "per_customer_total": 2},
        starts_at=(NOW - timedelta(days=1)).astimezone().isoformat(),
    )
    clock = [NOW]

    def decide_at(customer: str) -> str:
        return decide_offer(
            offer_request(customer),
            sessions=sessions,
            reservations=reservations,
            features=features,
            scorer=scorer,
            policy=PolicyConfig(mode="greedy"),
            coupon_key=coupon_key("s" * 16),
            holdout_key=holdout_key("s"),
            clock=lambda: clock[0],
        ).arm

    assert [decide_at("c1"), decide_at("c1")] == ["treatment", "none"]
    clock[0] = NOW + timedelta(days=1)
    assert [decide_at("c1"), decide_at("c1")] == ["treatment", "none"]
    clock[0] = NOW + timedelta(days=2)
    assert decide_at("c1") == "none"  # the total cap of 2 holds across days
