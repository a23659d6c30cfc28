"""Budget arithmetic: face values and the campaign day of daily caps (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.campaign_engine.budget.limits import campaign_day, face_value
from tests.unit.campaign_engine.fakes import offer_spec


def test_face_value_reserves_the_worst_reasonable_discount() -> None:
    assert face_value(offer_spec()) == 50
    assert face_value(offer_spec(discount={"type": "free_item", "value": 160})) == 160
    assert face_value(offer_spec(discount={"type": "percent", "value": 10}, min_basket=0)) == 75
    assert face_value(offer_spec(discount={"type": "percent", "value": 10}, min_basket=2001)) == 201


def test_daily_caps_follow_the_campaigns_time_zone() -> None:
    late_utc = datetime(2026, 11, 29, 16, 30, tzinfo=UTC)  # 01:30 on the 30th in Tokyo
    assert campaign_day(late_utc, 0) == "20261129"
    assert campaign_day(late_utc, 9 * 60) == "20261130"
