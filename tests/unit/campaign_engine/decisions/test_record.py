"""The issued coupon's expiry (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from services.campaign_engine.decisions.record import coupon_expiry


def test_coupons_expire_on_the_hour_and_never_after_the_campaign() -> None:
    now = datetime(2026, 11, 29, 10, 15, tzinfo=UTC)
    assert coupon_expiry(now, 2, now + timedelta(days=3)) == datetime(
        2026, 11, 29, 13, 0, tzinfo=UTC
    )
    jst = timezone(timedelta(hours=9))
    end = datetime(2026, 11, 29, 21, 30, tzinfo=jst)  # 12:30 UTC
    assert coupon_expiry(now, 72, end) == datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
