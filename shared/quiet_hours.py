"""Quiet hours: a daily window, in a time zone, in which no drop push goes out
(docs/interfaces.md § Campaign drops).

The window is kept in the customer's own time where it is known (the UTC offset of their
latest till sale, `utc_offset_minutes`), else in the drop's `timezone`.

Pure functions over aware datetimes: campaign_engine reports a drop as
`waiting_quiet_hours` while `next_allowed(now) > now`, and chat_agent schedules each drop
push at `next_allowed`. A window may span midnight ("22:00" to "08:00"); start == end
means no window.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.events.payloads import MAX_OFFSET_MINUTES

DEFAULT_QUIET_HOURS = {"start": "22:00", "end": "08:00", "timezone": "Asia/Tokyo"}


def parse_hhmm(text: str) -> time:
    """ "HH:MM" (00:00-23:59) as a time; ValueError otherwise."""
    hours, sep, minutes = text.partition(":")
    if not sep or len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError("must be HH:MM, e.g. 22:00")
    return time(int(hours), int(minutes))  # ValueError past 23:59


def zone(name: str) -> ZoneInfo:
    """The IANA zone of that name; ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "America", too long
        raise ValueError("must be an IANA time zone name, e.g. Asia/Tokyo") from exc


def customer_zone(utc_offset_minutes: int | None, fallback: str) -> tzinfo:
    """The customer's zone: their UTC offset when known (and plausible), else `fallback`
    (an IANA name: the drop's zone)."""
    if utc_offset_minutes is None or abs(utc_offset_minutes) > MAX_OFFSET_MINUTES:
        return zone(fallback)
    return timezone(timedelta(minutes=utc_offset_minutes))


def offset_minutes(moment: datetime) -> int | None:
    """The UTC offset an aware datetime was written with, in minutes (None: naive)."""
    offset = moment.utcoffset()
    return None if offset is None else int(offset.total_seconds() // 60)


def next_allowed(
    quiet: dict[str, str] | None,
    now: datetime,
    not_before: datetime | None = None,
    *,
    utc_offset_minutes: int | None = None,
) -> datetime:
    """The first instant at or after `now` (and `not_before`) outside the quiet window,
    in the customer's zone (`utc_offset_minutes`) or else the window's own."""
    at = max(now, not_before) if not_before is not None else now
    if not quiet:
        return at
    start, end = parse_hhmm(quiet["start"]), parse_hhmm(quiet["end"])
    if start == end:
        return at
    tz = customer_zone(utc_offset_minutes, quiet["timezone"])
    local = at.astimezone(tz)
    # The window that may hold `local` began today or yesterday (it spans midnight).
    for days_back in (0, 1):
        day = local.date() - timedelta(days=days_back)
        begins = datetime.combine(day, start, tzinfo=tz)
        ends_day = day if end > start else day + timedelta(days=1)
        ends = datetime.combine(ends_day, end, tzinfo=tz)
        if begins <= local < ends:
            return ends.astimezone(at.tzinfo)
    return at
