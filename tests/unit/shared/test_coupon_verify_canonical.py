"""`verify_canonical` is `normalize_code` and `verify_code` in one reading of the code."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.coupons import (
    CodeRejected,
    CouponClaims,
    coupon_key,
    issue_code,
    normalize_code,
    verify_canonical,
    verify_code,
)

KEY, OLD = coupon_key("a" * 40), coupon_key("b" * 40)
CODE = issue_code(OLD, CouponClaims(12, 1, 345, datetime(2027, 1, 1, 5, tzinfo=UTC)))


@pytest.mark.parametrize(
    "typed",
    [CODE, CODE.lower(), CODE.replace("-", ""), " ".join(CODE), CODE.replace("0", "O")],
)
def test_a_genuine_code_reads_as_both_would(typed: str) -> None:
    assert verify_canonical([KEY, OLD], typed) == (
        normalize_code(typed),
        verify_code([KEY, OLD], typed),
    )


@pytest.mark.parametrize(
    ("typed", "reason"),
    [("TN-JUNK", "unknown_code"), (CODE[:-1] + "Z", "unknown_code"), (CODE, "forged")],
)
def test_a_bad_code_is_refused_for_the_same_reason(typed: str, reason: str) -> None:
    with pytest.raises(CodeRejected) as refused:
        verify_canonical(KEY, typed)
    with pytest.raises(type(refused.value)):
        verify_code(KEY, typed)
    assert refused.value.reason == reason
