"""A small simulated campaign with a known true lift, for checking the 95% interval.

Every customer is linked. A customer makes Poisson(`visits`) baseline visits over the
window, each a basket drawn uniformly from BASKETS (mean exactly 700 yen). A treated
customer makes one extra visit with probability `extra_visit` — the coupon's effect.
So the true effect per treated customer is exactly extra_visit × 700 yen, and the true
incremental revenue is that times the number of treated customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASKETS = (300, 500, 700, 900, 1100)
MEAN_BASKET = sum(BASKETS) / len(BASKETS)


@dataclass(frozen=True)
class SimCustomer:
    index: int
    treated: bool
    baskets: tuple[int, ...]
    offsets_h: tuple[float, ...]  # hours into the window of each visit


@dataclass(frozen=True)
class SimCampaign:
    customers: tuple[SimCustomer, ...]
    effect_per_treated: float

    @property
    def treated(self) -> int:
        return sum(c.treated for c in self.customers)

    @property
    def true_incremental(self) -> float:
        return self.effect_per_treated * self.treated


def simulate(
    seed: int,
    n: int = 400,
    holdout: float = 0.2,
    visits: float = 3.0,
    extra_visit: float = 0.3,
    window_h: float = 200.0,
) -> SimCampaign:
    """A reproducible campaign: same seed, same customers and baskets."""
    rng = np.random.default_rng(seed)
    treated = rng.random(n) >= holdout
    visits_each = rng.poisson(visits, n) + (treated & (rng.random(n) < extra_visit))
    total = int(visits_each.sum())
    baskets = rng.choice(BASKETS, size=total)
    offsets = rng.uniform(0, window_h, size=total)
    bounds = np.concatenate(([0], np.cumsum(visits_each)))
    customers = tuple(
        SimCustomer(
            i,
            bool(treated[i]),
            tuple(int(b) for b in baskets[bounds[i] : bounds[i + 1]]),
            tuple(float(x) for x in offsets[bounds[i] : bounds[i + 1]]),
        )
        for i in range(n)
    )
    return SimCampaign(customers, extra_visit * MEAN_BASKET)
