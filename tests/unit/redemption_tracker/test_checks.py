"""Coupon checks without a database: each reason, the order, and the discount maths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.redemption_tracker.pos.checks import (
    Basket,
    CampaignTerms,
    DecisionTerms,
    Line,
    campaign_terms,
    check_coupon,
    compute_discount,
    offer_terms,
    read_code,
)
from shared.coupons import CouponClaims, coupon_key, issue_code

KEY = coupon_key("unit-test-secret")
T0 = datetime(2026, 11, 29, 10, tzinfo=UTC)


def campaign(status: str = "active", **offer_over: object) -> CampaignTerms:
    offer = {
        "offer_id": "o0",
        "index": 0,
        "title": "t",
        "discount": {"type": "amount", "value": 100},
        "applies_to": {},
        "min_basket": 0,
    }
    offer.update(offer_over)
    return campaign_terms(
        campaign_id="c1",
        number=7,
        status=status,
        starts_at=T0 - timedelta(days=1),
        ends_at=T0 + timedelta(days=10),
        offers=[offer],
        budget={},
        share_basis="attributed",
        share_bp=500,
    )


def claims(expires: datetime = T0 + timedelta(days=1), offer_index: int = 0) -> CouponClaims:
    return CouponClaims(7, offer_index, 1, expires)


def basket(
    total: int = 1000,
    at: datetime = T0,
    store: str = "S1",
    lines: tuple[Line, ...] = (Line("sku1", "onigiri", 2, 500),),
) -> Basket:
    return Basket(store, at, total, lines)


def reason(*args: object, **kwargs: object) -> str | None:
    return check_coupon(*args, **kwargs).reason  # type: ignore[arg-type]  # each test's arguments, passed through


def test_signature_reasons_are_offline() -> None:
    code = issue_code(KEY, claims())
    assert read_code(KEY, code).reason is None
    assert read_code(KEY, code.lower().replace("-", "")).code == code
    assert read_code(KEY, "nonsense").reason == "unknown_code"
    assert read_code(KEY, code[:-1] + ("0" if code[-1] != "0" else "1")).reason == "unknown_code"
    assert read_code(coupon_key("another-secret"), code).reason == "forged"


def test_each_offline_reason() -> None:
    c = campaign()
    assert reason(claims(), c, None, basket()) is None
    assert reason(claims(T0), c, None, basket()) == "expired"
    assert reason(claims(), None, None, basket()) == "campaign_not_active"
    assert reason(claims(offer_index=3), c, None, basket()) == "unknown_code"
    assert reason(claims(), c, None, basket(at=T0 - timedelta(days=2))) == "not_yet_valid"
    later = DecisionTerms("cu", T0 + timedelta(minutes=1), None, None, None)
    assert reason(claims(), c, later, basket()) == "not_yet_valid"
    assert reason(claims(), campaign(min_basket=1001), None, basket()) == "min_basket_not_met"
    assert (
        reason(claims(), campaign(applies_to={"skus": ["x"]}), None, basket())
        == "min_basket_not_met"
    )
    assert reason(claims(), campaign("paused"), None, basket()) == "campaign_not_active"
    assert (
        reason(claims(T0 + timedelta(days=30)), c, None, basket(at=T0 + timedelta(days=11)))
        == "campaign_not_active"
    )
    assert reason(claims(), campaign(stores=["S9"]), None, basket()) == "wrong_store"


def test_the_first_failing_check_gives_the_reason() -> None:
    # Expired and below the minimum basket and paused: expiry is checked first.
    assert reason(claims(T0), campaign("paused", min_basket=5000), None, basket()) == "expired"
    # Below the minimum basket in a paused campaign: the basket comes before the state.
    assert (
        reason(claims(), campaign("paused", min_basket=5000), None, basket())
        == "min_basket_not_met"
    )


def test_a_missing_decision_does_not_reject() -> None:
    verdict = check_coupon(claims(), campaign(), None, basket())
    assert verdict.reason is None and verdict.discount == 100 and verdict.customer_id is None


def test_the_pre_check_skips_the_basket() -> None:
    v = check_coupon(
        claims(), campaign(min_basket=99999), None, basket(total=0), check_basket=False
    )
    assert v.reason is None and v.discount == 0


@pytest.mark.parametrize(
    ("kind", "value", "applies", "expected"),
    [
        ("amount", 100, {}, 100),
        ("amount", 5000, {}, 1000),  # never more than the basket
        ("amount", 300, {"categories": ["drinks"]}, 200),  # capped at what it applies to
        ("percent", 15, {}, 150),
        ("percent", 10, {"skus": ["a"]}, 45),  # 10% of 450, floored
        ("free_item", 0, {"categories": ["onigiri"]}, 150),  # cheapest eligible unit
        ("free_item", 120, {"categories": ["onigiri"]}, 120),  # capped at value
    ],
)
def test_discounts(kind: str, value: int, applies: dict, expected: int) -> None:
    lines = (
        Line("a", "onigiri", 3, 150),
        Line("b", "onigiri", 1, 350),
        Line("c", "drinks", 1, 200),
    )
    offer = offer_terms({"discount": {"type": kind, "value": value}, "applies_to": applies}, 0)
    assert compute_discount(kind, value, offer, basket(total=1000, lines=lines)) == expected
