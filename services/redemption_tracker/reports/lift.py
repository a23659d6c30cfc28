"""Lift maths (pure): the holdout comparison and its 95% interval, by Welch's t.

Spend per linked customer over the campaign window is compared between the treatment
group (treatment/explore decisions) and the holdout group. The difference of means is
the per-customer effect; times the number of treated customers it is the incremental
revenue. The interval is Welch's: it does not assume equal variances in the two groups,
with Welch–Satterthwaite degrees of freedom. Customers who spent nothing count as 0:
leaving them out would compare buyers with buyers and hide the effect of a visit the
coupon caused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

CONFIDENCE = 0.95


@dataclass(frozen=True)
class LiftEstimate:
    method: str
    treated_customers: int
    holdout_customers: int
    treatment_mean_spend: float | None = None
    holdout_mean_spend: float | None = None
    difference_per_customer: float | None = None
    standard_error: float | None = None
    degrees_of_freedom: float | None = None
    incremental_revenue: int | None = None
    ci95_low: int | None = None
    ci95_high: int | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, floats rounded to 2 places."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 2)
        return out


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, var


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile (scipy, imported lazily: only reports need it)."""
    from scipy import stats

    return float(stats.t.ppf(p, df))


def welch_lift(
    treated: Sequence[float], holdout: Sequence[float], confidence: float = CONFIDENCE
) -> LiftEstimate:
    """Incremental revenue = (mean treated − mean holdout) × treated customers, with CI."""
    n_t, n_h = len(treated), len(holdout)
    if n_t == 0 or n_h == 0:
        return LiftEstimate(
            "welch",
            n_t,
            n_h,
            treatment_mean_spend=_mean_var(treated)[0] if n_t else None,
            holdout_mean_spend=_mean_var(holdout)[0] if n_h else None,
            note="needs customers in both the treatment and the holdout group",
        )
    mean_t, var_t = _mean_var(treated)
    mean_h, var_h = _mean_var(holdout)
    diff = mean_t - mean_h
    incremental = round(diff * n_t)
    point = LiftEstimate("welch", n_t, n_h, mean_t, mean_h, diff, incremental_revenue=incremental)
    if n_t < 2 or n_h < 2:
        return replace(point, note="an interval needs at least 2 customers in each group")
    a, b = var_t / n_t, var_h / n_h
    se = math.sqrt(a + b)
    if se == 0.0:
        return replace(
            point,
            standard_error=0.0,
            ci95_low=incremental,
            ci95_high=incremental,
            note="no variance in either group",
        )
    df = (a + b) ** 2 / ((a * a) / (n_t - 1) + (b * b) / (n_h - 1))
    half = t_quantile(0.5 + confidence / 2, df) * se
    return replace(
        point,
        standard_error=se,
        degrees_of_freedom=df,
        # Rounded outward to whole yen so the interval never shrinks by rounding.
        ci95_low=math.floor((diff - half) * n_t),
        ci95_high=math.ceil((diff + half) * n_t),
    )


def share_of(amount: int, share_bp: int) -> int:
    """The revenue share of an amount in yen, floored (never more than owed)."""
    return amount * share_bp // 10_000 if amount >= 0 else -((-amount) * share_bp // 10_000)


def incremental_share(estimate: LiftEstimate, share_bp: int) -> int:
    """Share on the incremental basis: pct × max(incremental revenue, 0)."""
    return share_of(max(estimate.incremental_revenue or 0, 0), share_bp)
