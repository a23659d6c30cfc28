"""Campaign rules: lifecycle, tightening, and offers as stored and announced (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.campaign_engine.campaigns.offers import snapshot_offer, stored_offer
from services.campaign_engine.campaigns.rules import (
    CampaignConflict,
    check_update,
    merge_offers,
    transition,
)
from tests.unit.campaign_engine.fakes import offer_spec

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=7)

ALLOWED = {
    ("draft", "activate"): "active",
    ("active", "pause"): "paused",
    ("paused", "activate"): "active",
    ("active", "end"): "ended",
    ("paused", "end"): "ended",
}


@pytest.mark.parametrize("status", ["draft", "active", "paused", "ended"])
@pytest.mark.parametrize("action", ["activate", "pause", "end"])
def test_every_transition_is_allowed_or_refused_with_a_reason(status: str, action: str) -> None:
    expected = ALLOWED.get((status, action))
    if expected:
        assert transition(status, action, ends_at=LATER, now=NOW) == expected
    else:
        with pytest.raises(CampaignConflict) as info:
            transition(status, action, ends_at=LATER, now=NOW)
        assert info.value.reason == "illegal_transition"
        assert info.value.conflicts[0].field == "status"
        assert status in info.value.conflicts[0].message


def test_a_campaign_past_its_window_cannot_be_activated() -> None:
    with pytest.raises(CampaignConflict) as info:
        transition("draft", "activate", ends_at=NOW - timedelta(seconds=1), now=NOW)
    assert info.value.reason == "campaign_window_over"
    assert info.value.conflicts[0].field == "ends_at"


def _spec(**over: object) -> dict:
    base = {
        "name": "n",
        "starts_at": NOW,
        "ends_at": LATER,
        "offers": [stored_offer(offer_spec(), index=0, offer_id="o1")],
        "budget": {"max_coupons": 100, "max_redemptions": None, "max_discount_total": 5000},
        "caps": {"per_customer_per_day": 1, "per_customer_total": 3},
        "holdout_pct": 10.0,
        "audience": None,
        "revenue_share": {"pct": 5.0, "basis": "attributed"},
        "per_call_fee": 1,
    }
    base.update(over)
    return base


def test_a_draft_may_change_anything() -> None:
    check_update("draft", _spec(), _spec(budget={"max_coupons": 10**6}, holdout_pct=50.0))


def test_an_ended_campaign_cannot_change() -> None:
    with pytest.raises(CampaignConflict) as info:
        check_update("ended", _spec(), _spec(name="other"))
    assert info.value.reason == "campaign_ended"


@pytest.mark.parametrize("status", ["active", "paused"])
@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"budget": {"max_coupons": 101, "max_redemptions": None, "max_discount_total": 5000}},
            "budget.max_coupons",
        ),
        (
            {"budget": {"max_coupons": 100, "max_redemptions": None, "max_discount_total": None}},
            "budget.max_discount_total",
        ),
        (
            {"caps": {"per_customer_per_day": 2, "per_customer_total": 3}},
            "caps.per_customer_per_day",
        ),
        (
            {"caps": {"per_customer_per_day": 1, "per_customer_total": None}},
            "caps.per_customer_total",
        ),
        ({"holdout_pct": 20.0}, "holdout_pct"),
        ({"starts_at": NOW - timedelta(days=1)}, "starts_at"),
        ({"revenue_share": {"pct": 6.0, "basis": "attributed"}}, "revenue_share"),
        ({"per_call_fee": 2}, "per_call_fee"),
    ],
)
def test_a_live_campaign_refuses_loosening(status: str, change: dict, field: str) -> None:
    with pytest.raises(CampaignConflict) as info:
        check_update(status, _spec(), _spec(**change))
    assert info.value.reason == "not_tightened"
    assert [c.field for c in info.value.conflicts] == [field]


def test_a_live_campaign_accepts_tightening() -> None:
    check_update(
        "active",
        _spec(),
        _spec(
            name="renamed",
            ends_at=LATER + timedelta(days=1),
            budget={"max_coupons": 50, "max_redemptions": 10, "max_discount_total": 4000},
            caps={"per_customer_per_day": 0, "per_customer_total": 1},
        ),
    )


def test_offers_of_a_draft_are_replaced_and_reindexed() -> None:
    current = [
        stored_offer(offer_spec(), index=0, offer_id="o1"),
        stored_offer(offer_spec(), index=1, offer_id="o2"),
    ]
    ids = iter(["new"])
    merged = merge_offers(
        "draft", current, [offer_spec(offer_id="o2"), offer_spec()], lambda: next(ids)
    )
    assert [(o["offer_id"], o["index"]) for o in merged] == [("o2", 0), ("new", 1)]


def test_live_offers_tighten_and_unlisted_ones_are_withdrawn_not_removed() -> None:
    current = [
        stored_offer(offer_spec(), index=0, offer_id="o1"),
        stored_offer(offer_spec(), index=1, offer_id="o2"),
    ]
    tighter = offer_spec(
        offer_id="o2",
        discount={"type": "amount", "value": 40},
        min_basket=400,
        valid_hours=24,
        applies_to={"categories": ["onigiri"]},
    )
    merged = merge_offers("active", current, [tighter], lambda: "unused")
    assert [(o["offer_id"], o["index"], o["withdrawn"]) for o in merged] == [
        ("o1", 0, True),
        ("o2", 1, False),
    ]
    assert merged[1]["discount"]["value"] == 40


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"discount": {"type": "amount", "value": 60}}, "offers.0.discount.value"),
        ({"discount": {"type": "percent", "value": 5}}, "offers.0.discount.type"),
        ({"min_basket": 200}, "offers.0.min_basket"),
        ({"valid_hours": 96}, "offers.0.valid_hours"),
        ({"applies_to": {"categories": ["onigiri", "sweets"]}}, "offers.0.applies_to"),
        ({"applies_to": {"skus": ["4901"]}}, "offers.0.applies_to"),
    ],
)
def test_live_offers_refuse_loosening(change: dict, field: str) -> None:
    current = [stored_offer(offer_spec(), index=0, offer_id="o1")]
    with pytest.raises(CampaignConflict) as info:
        merge_offers("active", current, [offer_spec(offer_id="o1", **change)], lambda: "x")
    assert [c.field for c in info.value.conflicts] == [field]


def test_offers_cannot_be_added_to_or_revived_on_a_live_campaign() -> None:
    current = [
        stored_offer(offer_spec(), index=0, offer_id="o1"),
        {**stored_offer(offer_spec(), index=1, offer_id="o2"), "withdrawn": True},
    ]
    with pytest.raises(CampaignConflict) as added:
        merge_offers("active", current, [offer_spec(offer_id="o1"), offer_spec()], lambda: "x")
    assert added.value.conflicts[0].field == "offers.1"
    with pytest.raises(CampaignConflict) as revived:
        merge_offers("paused", current, [offer_spec(offer_id="o2")], lambda: "x")
    assert revived.value.conflicts[0].field == "offers.0.offer_id"


def test_an_unknown_offer_id_is_reported_by_position() -> None:
    with pytest.raises(KeyError) as info:
        merge_offers(
            "draft",
            [stored_offer(offer_spec(), index=0, offer_id="o1")],
            [offer_spec(offer_id="o1"), offer_spec(offer_id="nope")],
            lambda: "x",
        )
    assert info.value.args == (1,)


def test_snapshot_offer_carries_what_the_tracker_needs() -> None:
    snap = snapshot_offer(stored_offer(offer_spec(), index=3, offer_id="o9"))
    assert snap == {
        "offer_id": "o9",
        "index": 3,
        "title": "50 yen off onigiri",
        "discount": {"type": "amount", "value": 50},
        "applies_to": {"categories": ["onigiri", "bento"]},
        "min_basket": 300,
        "valid_hours": 72,
        "category": "onigiri",
    }
    sku = snapshot_offer(
        stored_offer(
            offer_spec(applies_to={"skus": ["4901"], "categories": None}), index=0, offer_id="o"
        )
    )
    assert sku["applies_to"] == {"skus": ["4901"]} and sku["category"] is None
