"""Print coupon-code issue and verify throughput (median of several runs, ops/s).

Run: python bench/coupon_codes.py [--codes N] [--runs R]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from shared.coupons import (
    EPOCH,
    CodeRejected,
    CouponClaims,
    coupon_key,
    issue_code,
    normalize_code,
    verify_code,
)


def _rate(label: str, runs: int, count: int, work: Callable[[], None]) -> None:
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        rates.append(count / (time.perf_counter() - started))
    print(
        f"{label:<28} {statistics.median(rates):>12,.0f} ops/s"
        f"   (min {min(rates):,.0f}, max {max(rates):,.0f}, {runs} runs of {count:,})"
    )


def main() -> None:
    """Time issuing, verifying and normalizing codes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    key = coupon_key("bench-secret")
    rng = random.Random(1)
    claims = [
        CouponClaims(
            rng.randrange(2**20),
            rng.randrange(16),
            rng.randrange(2**24),
            EPOCH + timedelta(hours=rng.randrange(2**18)),
        )
        for _ in range(args.codes)
    ]
    codes = [issue_code(key, c) for c in claims]
    typed = [c.lower().replace("-", "") for c in codes]
    forged = [c[:-5] + ("0" if c[-5] != "0" else "1") + c[-4:] for c in codes]

    def issue() -> None:
        for c in claims:
            issue_code(key, c)

    def verify() -> None:
        for code in codes:
            verify_code(key, code)

    def verify_typed() -> None:
        for code in typed:
            verify_code(key, code)

    def reject() -> None:
        for code in forged:
            try:
                verify_code(key, code)
            except CodeRejected:
                pass
            else:
                raise AssertionError(f"accepted a mistyped code {code}")

    def normalize() -> None:
        for code in typed:
            normalize_code(code)

    print(f"coupon codes: {len(codes[0])} characters, e.g. {codes[0]}")
    _rate("issue_code", args.runs, args.codes, issue)
    _rate("verify_code (canonical)", args.runs, args.codes, verify)
    _rate("verify_code (lower, no -)", args.runs, args.codes, verify_typed)
    _rate("verify_code (mistyped)", args.runs, args.codes, reject)
    _rate("normalize_code", args.runs, args.codes, normalize)


if __name__ == "__main__":
    main()
