"""How far the tracker trusts a till's clock (docs/architecture.md § Invariants).

A till reports when a sale happened (`occurred_at`), but the tracker only knows for sure
when the report arrived (`received_at`, its own clock). Three bounds tie the two:

- `clock_skew` (TENIN_POS_CLOCK_SKEW_SECONDS, default 300): a transaction dated further
  than this ahead of `received_at` is rejected, naming `occurred_at`;
- `max_lateness` (TENIN_POS_MAX_LATENESS_HOURS, default 72, for tills that were offline):
  coupons on a transaction dated further back are rejected with `late_report`, so a
  backdated sale can never reach an expiry, a campaign start or end more than this far
  in the past; a redemption reported later than `clock_skew` but within this bound is
  accepted and marked `late`, and the campaign report counts those;
- `void_window` (TENIN_VOID_WINDOW_DAYS, default 30): a transaction received longer ago
  than this can no longer be voided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

ENV_CLOCK_SKEW = "TENIN_POS_CLOCK_SKEW_SECONDS"
ENV_MAX_LATENESS = "TENIN_POS_MAX_LATENESS_HOURS"
ENV_VOID_WINDOW = "TENIN_VOID_WINDOW_DAYS"


class TillTimeError(ValueError):
    """An environment value the till-time rules cannot use."""


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TillTimeError(f"{name} must be a number, got {raw!r}") from None
    if not 0 <= value < 1e6:
        raise TillTimeError(f"{name} must be within 0..1e6, got {raw!r}")
    return value


@dataclass(frozen=True)
class TillTime:
    """The bounds on a till's clock, read once at start-up."""

    clock_skew: timedelta = timedelta(minutes=5)
    max_lateness: timedelta = timedelta(hours=72)
    void_window: timedelta = timedelta(days=30)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TillTime:
        """The rules from TENIN_POS_CLOCK_SKEW_SECONDS, TENIN_POS_MAX_LATENESS_HOURS, TENIN_VOID_WINDOW_DAYS."""
        d = cls()
        return cls(
            clock_skew=timedelta(
                seconds=_positive(env, ENV_CLOCK_SKEW, d.clock_skew.total_seconds())
            ),
            max_lateness=timedelta(
                hours=_positive(env, ENV_MAX_LATENESS, d.max_lateness.total_seconds() / 3600)
            ),
            void_window=timedelta(days=_positive(env, ENV_VOID_WINDOW, d.void_window.days)),
        )

    def ahead(self, occurred_at: datetime, now: datetime) -> bool:
        """Dated further in the future than the clocks can disagree."""
        return occurred_at > self.latest(now)

    def latest(self, now: datetime) -> datetime:
        """The latest `occurred_at` not `ahead` of `now` (a batch compares against it once)."""
        return now + self.clock_skew

    def too_late(self, occurred_at: datetime, now: datetime) -> bool:
        """Reported after the allowed lateness: its coupons are `late_report`."""
        return occurred_at < now - self.max_lateness

    def late(self, occurred_at: datetime, now: datetime) -> bool:
        """Reported later than the clocks can disagree (an offline till, or a backdated sale)."""
        return occurred_at < now - self.clock_skew
