"""Usage.refusal: the first limit one more coupon would break, in the budgets' order."""

from __future__ import annotations

import itertools

import pytest

from services.campaign_engine.budget.limits import Limits, Usage

ORDER = (
    "max_coupons",
    "max_discount_total",
    "max_redemptions",
    "per_customer_per_day",
    "per_customer_total",
)
AT_LIMIT = Usage(issued=10, money=1000, redeemed=5, customer_day=2, customer_total=4)
LIMITS_AT = {  # each limit exactly reached by AT_LIMIT (one more coupon of 100 yen breaks it)
    "max_coupons": 10,
    "max_discount_total": 1050,
    "max_redemptions": 5,
    "per_customer_per_day": 2,
    "per_customer_total": 4,
}
ROOMY = {name: 1_000_000 for name in ORDER}


@pytest.mark.parametrize(
    "broken", [c for n in range(len(ORDER) + 1) for c in itertools.combinations(ORDER, n)]
)
def test_the_first_broken_limit_is_named(broken: tuple[str, ...]) -> None:
    limits = Limits(**{name: LIMITS_AT[name] if name in broken else ROOMY[name] for name in ORDER})
    assert AT_LIMIT.refusal(limits, 100) == (broken[0] if broken else None)


def test_no_limit_refuses_nothing() -> None:
    assert AT_LIMIT.refusal(Limits(max_coupons=None), 10**9) is None


def test_a_limit_is_reached_not_broken_by_the_last_coupon_it_allows() -> None:
    assert AT_LIMIT.refusal(Limits(max_coupons=11, max_discount_total=1100), 100) is None
    assert AT_LIMIT.refusal(Limits(max_coupons=11, max_discount_total=1099), 100) == (
        "max_discount_total"
    )
