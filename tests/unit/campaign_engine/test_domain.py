"""Campaign rules: lifecycle, tightening, offers, audience and day arithmetic (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.campaign_engine.domain import (
    CampaignConflict,
    audience_admits,
    campaign_day,
    check_update,
    coupon_expiry,
    face_value,
    merge_offers,
    snapshot_offer,
    stored_offer,
    transition,
)
from shared.model.features import CustomerFeatures

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


def _offer(**over: object) -> dict:
    base = {
        "title": "50 yen off onigiri",
        "discount": {"type": "amount", "value": 50},
        "applies_to": {"categories": ["onigiri", "bento"]},
        "min_basket": 300,
        "valid_hours": 72,
    }
    base.update(over)
    return base


def _spec(**over: object) -> dict:
    base = {
        "name": "n",
        "starts_at": NOW,
        "ends_at": LATER,
        "offers": [stored_offer(_offer(), index=0, offer_id="o1")],
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
        stored_offer(_offer(), index=0, offer_id="o1"),
        stored_offer(_offer(), index=1, offer_id="o2"),
    ]
    ids = iter(["new"])
    merged = merge_offers("draft", current, [_offer(offer_id="o2"), _offer()], lambda: next(ids))
    assert [(o["offer_id"], o["index"]) for o in merged] == [("o2", 0), ("new", 1)]


def test_live_offers_tighten_and_unlisted_ones_are_withdrawn_not_removed() -> None:
    current = [
        stored_offer(_offer(), index=0, offer_id="o1"),
        stored_offer(_offer(), index=1, offer_id="o2"),
    ]
    tighter = _offer(
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
    current = [stored_offer(_offer(), index=0, offer_id="o1")]
    with pytest.raises(CampaignConflict) as info:
        merge_offers("active", current, [_offer(offer_id="o1", **change)], lambda: "x")
    assert [c.field for c in info.value.conflicts] == [field]


def test_offers_cannot_be_added_to_or_revived_on_a_live_campaign() -> None:
    current = [
        stored_offer(_offer(), index=0, offer_id="o1"),
        {**stored_offer(_offer(), index=1, offer_id="o2"), "withdrawn": True},
    ]
    with pytest.raises(CampaignConflict) as added:
        merge_offers("active", current, [_offer(offer_id="o1"), _offer()], lambda: "x")
    assert added.value.conflicts[0].field == "offers.1"
    with pytest.raises(CampaignConflict) as revived:
        merge_offers("paused", current, [_offer(offer_id="o2")], lambda: "x")
    assert revived.value.conflicts[0].field == "offers.0.offer_id"


def test_an_unknown_offer_id_is_reported_by_position() -> None:
    with pytest.raises(KeyError) as info:
        merge_offers(
            "draft",
            [stored_offer(_offer(), index=0, offer_id="o1")],
            [_offer(offer_id="o1"), _offer(offer_id="nope")],
            lambda: "x",
        )
    assert info.value.args == (1,)


def test_snapshot_offer_carries_what_the_tracker_needs() -> None:
    snap = snapshot_offer(stored_offer(_offer(), index=3, offer_id="o9"))
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
            _offer(applies_to={"skus": ["4901"], "categories": None}), index=0, offer_id="o"
        )
    )
    assert sku["applies_to"] == {"skus": ["4901"]} and sku["category"] is None


def test_face_value_reserves_the_worst_reasonable_discount() -> None:
    assert face_value(_offer()) == 50
    assert face_value(_offer(discount={"type": "free_item", "value": 160})) == 160
    assert face_value(_offer(discount={"type": "percent", "value": 10}, min_basket=0)) == 75
    assert face_value(_offer(discount={"type": "percent", "value": 10}, min_basket=2001)) == 201


def test_audience_rules_all_have_to_hold() -> None:
    regular = CustomerFeatures(
        frequency_per_week=3.0,
        monetary_avg=800.0,
        days_since_follow=10,
        category_share={"coffee": 0.5},
    )
    assert audience_admits(None, regular, "ja", linked=False)
    rules = {
        "languages": ["ja"],
        "min_visits_per_week": 2,
        "max_avg_basket": 1000,
        "bought_categories": ["coffee", "sweets"],
        "max_days_since_follow": 30,
    }
    assert audience_admits(rules, regular, "ja", linked=False)
    assert not audience_admits(rules, regular, "en", linked=False)
    assert not audience_admits({**rules, "min_visits_per_week": 4}, regular, "ja", linked=False)
    assert not audience_admits(
        {**rules, "bought_categories": ["bento"]}, regular, "ja", linked=False
    )
    assert not audience_admits({"linked_only": True}, regular, "ja", linked=False)
    assert audience_admits({"linked_only": True}, regular, "ja", linked=True)


def test_daily_caps_follow_the_campaigns_time_zone() -> None:
    late_utc = datetime(2026, 11, 29, 16, 30, tzinfo=UTC)  # 01:30 on the 30th in Tokyo
    assert campaign_day(late_utc, 0) == "20261129"
    assert campaign_day(late_utc, 9 * 60) == "20261130"


def test_coupons_expire_on_the_hour_and_never_after_the_campaign() -> None:
    now = datetime(2026, 11, 29, 10, 15, tzinfo=UTC)
    assert coupon_expiry(now, 2, now + timedelta(days=3)) == datetime(
        2026, 11, 29, 13, 0, tzinfo=UTC
    )
    jst = timezone(timedelta(hours=9))
    end = datetime(2026, 11, 29, 21, 30, tzinfo=jst)  # 12:30 UTC
    assert coupon_expiry(now, 72, end) == datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
