"""The till-time rules read from the environment (services/redemption_tracker/till_time.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.redemption_tracker.till_time import TillTime, TillTimeError

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def test_defaults_and_environment() -> None:
    assert TillTime.from_env({}) == TillTime(
        timedelta(minutes=5), timedelta(hours=72), timedelta(days=30)
    )
    custom = TillTime.from_env(
        {
            "TENIN_POS_CLOCK_SKEW_SECONDS": "60",
            "TENIN_POS_MAX_LATENESS_HOURS": "24",
            "TENIN_VOID_WINDOW_DAYS": "7",
        }
    )
    assert custom == TillTime(timedelta(seconds=60), timedelta(hours=24), timedelta(days=7))


@pytest.mark.parametrize("raw", ["soon", "-1", "inf", "nan"])
def test_bad_values_are_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(TillTimeError, match="TENIN_POS_MAX_LATENESS_HOURS"):
        TillTime.from_env({"TENIN_POS_MAX_LATENESS_HOURS": raw})


def test_ahead_late_and_too_late() -> None:
    rules = TillTime()
    assert rules.ahead(NOW + timedelta(minutes=6), NOW)
    assert not rules.ahead(NOW + timedelta(minutes=4), NOW)
    assert not rules.late(NOW - timedelta(minutes=4), NOW)
    assert rules.late(NOW - timedelta(minutes=6), NOW)
    assert not rules.too_late(NOW - timedelta(hours=71), NOW)
    assert rules.too_late(NOW - timedelta(hours=73), NOW)
