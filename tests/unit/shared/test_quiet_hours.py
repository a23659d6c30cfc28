"""Quiet hours: the first instant a drop push may go (docs/interfaces.md § Campaign drops)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.quiet_hours import next_allowed, offset_minutes, parse_hhmm, zone

TOKYO_NIGHT = {"start": "22:00", "end": "08:00", "timezone": "Asia/Tokyo"}


def _utc(hour: int, minute: int = 0, day: int = 30) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        (_utc(12, 59), _utc(12, 59)),  # 21:59 Tokyo: still allowed
        (_utc(13, 0), _utc(23, 0)),  # 22:00 Tokyo: wait until 08:00
        (_utc(16, 0), _utc(23, 0)),  # 01:00 Tokyo, after midnight: same morning
        (_utc(22, 59), _utc(23, 0)),
        (_utc(23, 0), _utc(23, 0)),  # 08:00 Tokyo: allowed again
    ],
)
def test_a_window_across_midnight(now: datetime, allowed: datetime) -> None:
    assert next_allowed(TOKYO_NIGHT, now) == allowed


def test_a_daytime_window_none_and_an_empty_one() -> None:
    lunch = {"start": "12:00", "end": "13:00", "timezone": "UTC"}
    assert next_allowed(lunch, _utc(12, 30)) == _utc(13, 0)
    assert next_allowed(lunch, _utc(13, 30)) == _utc(13, 30)
    assert next_allowed(None, _utc(3)) == _utc(3)
    assert next_allowed({"start": "09:00", "end": "09:00", "timezone": "UTC"}, _utc(9)) == _utc(9)


def test_send_after_then_quiet_hours() -> None:
    # send_after lands inside the quiet window: the push waits for its end.
    assert next_allowed(TOKYO_NIGHT, _utc(3), not_before=_utc(14)) == _utc(23, 0)


@pytest.mark.parametrize("bad", ["8:00", "24:00", "12:60", "noon", "12-00"])
def test_bad_times_and_zones_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_hhmm(bad)
    for name in ("Mars/Olympus", "America", "x" * 5000, "Asia/Tokyo\x00"):
        with pytest.raises(ValueError):
            zone(name)


def test_a_customer_with_a_known_offset_gets_the_window_in_their_own_time() -> None:
    # 13:00 UTC: 22:00 in Tokyo (the drop's zone, quiet) but 08:00 in New York (-05:00).
    assert next_allowed(TOKYO_NIGHT, _utc(13, 0), utc_offset_minutes=-300) == _utc(13, 0)
    # 04:00 UTC: 13:00 in Tokyo (allowed) but 23:00 in New York: wait until 08:00 there.
    assert next_allowed(TOKYO_NIGHT, _utc(4, 0), utc_offset_minutes=-300) == _utc(13, 0)
    # Unknown (or implausible) offsets fall back to the drop's zone.
    assert next_allowed(TOKYO_NIGHT, _utc(13, 0), utc_offset_minutes=None) == _utc(23, 0)
    assert next_allowed(TOKYO_NIGHT, _utc(13, 0), utc_offset_minutes=24 * 60) == _utc(23, 0)


def test_the_offset_a_till_wrote() -> None:
    assert offset_minutes(datetime.fromisoformat("2026-11-29T10:15:00+09:00")) == 540
    assert offset_minutes(datetime.fromisoformat("2026-11-29T10:15:00-03:30")) == -210
    assert offset_minutes(datetime(2026, 11, 29, 10, 15)) is None
