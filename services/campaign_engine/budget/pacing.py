"""Budget pacing: how much of a campaign's budget may be committed by a given time (no I/O).

docs/architecture.md § Budget pacing. A campaign with `pacing: even` (the default) may have
committed, at time t, no more than its budget's share for t:

    share(t)     = min(1, elapsed(t) + slack)      elapsed(t) = (t - starts_at) / (ends_at - starts_at),
                                                     clamped to [0, 1]
    allowance(t) = floor(budget x share(t))

for each of its total budgets that is set: `max_coupons` (coupons issued) and
`max_discount_total` (yen committed: face value of unredeemed coupons plus the real
discount of redeemed ones). `max_redemptions` is not paced: redemptions happen at the
till, after the coupon left, so pacing them at issue would mean nothing. The slack (a
share of the budget, PolicyConfig.pacing_slack) lets the first coupons out at the start
and absorbs the few decisions that read the same usage at once. `asap` paces nothing:
the budget alone limits it. A window with no end has nothing to spread over, so it is
not paced (every campaign the API accepts has an `ends_at`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Literal

from services.campaign_engine.budget.limits import Limits, Usage

Pacing = Literal["even", "asap"]
PACINGS: tuple[Pacing, ...] = ("even", "asap")
DEFAULT_PACING: Pacing = "even"
# A share of the budget committed ahead of the even line (5%: a 1,000-coupon campaign may
# issue its first 50 at once, then about one per thousandth of its window).
DEFAULT_PACING_SLACK = 0.05
PACED = "paced"


def elapsed_fraction(starts_at: datetime, ends_at: datetime | None, now: datetime) -> float:
    """How much of the campaign window has passed at `now`, in [0, 1] (1 with no end)."""
    if ends_at is None or ends_at <= starts_at:
        return 1.0
    fraction = (now - starts_at) / (ends_at - starts_at)
    return min(1.0, max(0.0, fraction))


def paced_share(
    starts_at: datetime, ends_at: datetime | None, now: datetime, slack: float
) -> float:
    """The share of each paced budget that may be committed at `now`."""
    return min(1.0, elapsed_fraction(starts_at, ends_at, now) + max(0.0, slack))


def allowance(total: int, share: float) -> int:
    """Units of a `total` budget that may be committed at `share` (rounded down)."""
    # The small epsilon keeps 0.55 x 100 from flooring to 54 through float error.
    return min(total, math.floor(total * share + 1e-9))


def paced_limits(
    pacing: str,
    limits: Limits,
    *,
    starts_at: datetime,
    ends_at: datetime | None,
    now: datetime,
    slack: float = DEFAULT_PACING_SLACK,
) -> Limits:
    """The limits with each paced budget lowered to its allowance for `now` (unchanged for
    `asap`): what the reservation script is given, so that pacing holds atomically across
    a decision batch and concurrent workers, as the budget itself does."""
    if pacing != "even":
        return limits
    share = paced_share(starts_at, ends_at, now, slack)
    return replace(
        limits,
        max_coupons=None if limits.max_coupons is None else allowance(limits.max_coupons, share),
        max_discount_total=(
            None
            if limits.max_discount_total is None
            else allowance(limits.max_discount_total, share)
        ),
    )


def pacing_refusal(
    pacing: str,
    limits: Limits,
    usage: Usage,
    face: int,
    *,
    starts_at: datetime,
    ends_at: datetime | None,
    now: datetime,
    slack: float = DEFAULT_PACING_SLACK,
) -> str | None:
    """`paced` when one more coupon of `face` yen would commit more than the share for `now`
    (the same allowance paced_limits gives the reservation; checked per candidate, so kept
    to plain arithmetic)."""
    if pacing != "even" or (limits.max_coupons is None and limits.max_discount_total is None):
        return None
    share = paced_share(starts_at, ends_at, now, slack)
    checks = (
        (limits.max_coupons, usage.issued + 1),
        (limits.max_discount_total, usage.money + face),
    )
    if any(total is not None and after > allowance(total, share) for total, after in checks):
        return PACED
    return None


def budget_refusal(pacing: str, limits: Limits, usage: Usage, face: int) -> str:
    """Why a reservation given paced_limits was refused on a campaign budget: the budget
    itself (`budget_exhausted`), or, for an even campaign whose budget still has room for
    this coupon, pacing (`paced`). `usage` is read after the refusal."""
    campaign_wide = Usage(usage.issued, usage.money, usage.redeemed)
    if pacing == "even" and campaign_wide.refusal(limits, face) is None:
        return PACED
    return "budget_exhausted"
