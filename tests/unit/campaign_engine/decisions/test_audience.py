"""Audience rules: every rule a campaign sets has to hold (pure)."""

from __future__ import annotations

from services.campaign_engine.decisions.audience import audience_admits
from shared.model.features import CustomerFeatures


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
