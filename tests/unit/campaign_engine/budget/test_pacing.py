"""Even pacing with a controlled clock: the share of the budget allowed at each moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.campaign_engine.bootstrap import bootstrap
from services.campaign_engine.budget.in_memory import InMemoryReservations
from services.campaign_engine.budget.limits import Limits, Usage
from services.campaign_engine.budget.pacing import (
    allowance,
    budget_refusal,
    elapsed_fraction,
    paced_limits,
    paced_share,
    pacing_refusal,
)
from services.campaign_engine.budget.reservation_store import Refused, Seed, Wanted
from shared.config import Settings

START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
END = START + timedelta(days=10)


def at(days: float) -> datetime:
    return START + timedelta(days=days)


def refusal(
    usage: Usage, now: datetime, *, pacing: str = "even", slack: float = 0.0, face: int = 50
) -> str | None:
    limits = Limits(max_coupons=100, max_discount_total=10_000)
    return pacing_refusal(
        pacing, limits, usage, face, starts_at=START, ends_at=END, now=now, slack=slack
    )


@pytest.mark.parametrize(
    ("now", "fraction"),
    [(at(-1), 0.0), (at(0), 0.0), (at(2.5), 0.25), (at(5), 0.5), (at(10), 1.0), (at(12), 1.0)],
)
def test_the_elapsed_fraction_is_clamped_to_the_window(now: datetime, fraction: float) -> None:
    assert elapsed_fraction(START, END, now) == pytest.approx(fraction)


def test_at_the_window_start_only_the_slack_may_go() -> None:
    assert refusal(Usage(issued=0, money=0, redeemed=0), at(0), slack=0.0) == "paced"
    # 5% of 100 coupons (and of ¥10,000) may go at once.
    assert refusal(Usage(issued=4, money=200, redeemed=0), at(0), slack=0.05) is None
    assert refusal(Usage(issued=5, money=250, redeemed=0), at(0), slack=0.05) == "paced"


def test_in_the_middle_the_line_is_half_the_budget() -> None:
    assert refusal(Usage(issued=49, money=2450, redeemed=0), at(5)) is None
    assert refusal(Usage(issued=50, money=2500, redeemed=0), at(5)) == "paced"
    # The slack lets the campaign run that share ahead of the line, and no further.
    assert refusal(Usage(issued=54, money=2700, redeemed=0), at(5), slack=0.05) is None
    assert refusal(Usage(issued=55, money=2750, redeemed=0), at(5), slack=0.05) == "paced"


def test_the_money_budget_is_paced_too() -> None:
    # 20 coupons is well under the coupon line, but ¥5,000 is the money line at half-time.
    assert refusal(Usage(issued=20, money=4_950, redeemed=0), at(5), face=50) is None
    assert refusal(Usage(issued=20, money=4_951, redeemed=0), at(5), face=50) == "paced"
    # A smaller offer still fits where a bigger one would not.
    assert refusal(Usage(issued=20, money=4_900, redeemed=0), at(5), face=100) is None
    assert refusal(Usage(issued=20, money=4_900, redeemed=0), at(5), face=101) == "paced"


def test_at_the_window_end_the_whole_budget_is_allowed() -> None:
    assert refusal(Usage(issued=99, money=0, redeemed=0), at(10)) is None
    assert paced_share(START, END, at(9.99), slack=0.05) == 1.0


def test_asap_is_never_paced() -> None:
    assert refusal(Usage(issued=99, money=9_000, redeemed=0), at(0), pacing="asap") is None


def test_redemptions_and_missing_budgets_are_not_paced() -> None:
    limits = Limits(max_coupons=None, max_redemptions=10, max_discount_total=None)
    usage = Usage(issued=1_000, money=10**6, redeemed=9)
    assert (
        pacing_refusal("even", limits, usage, 50, starts_at=START, ends_at=END, now=at(0), slack=0)
        is None
    )


def test_a_window_without_an_end_is_not_paced() -> None:
    usage = Usage(issued=99, money=0, redeemed=0)
    assert elapsed_fraction(START, None, at(0)) == 1.0
    limits = Limits(max_coupons=100)
    assert (
        pacing_refusal("even", limits, usage, 1, starts_at=START, ends_at=None, now=at(0), slack=0)
        is None
    )


def test_the_allowance_rounds_down_without_float_error() -> None:
    assert allowance(100, 0.55) == 55
    assert allowance(3, 0.5) == 1
    assert allowance(100, 1.0) == 100


def test_paced_limits_lower_each_paced_budget_to_its_allowance() -> None:
    limits = Limits(max_coupons=100, max_redemptions=7, max_discount_total=10_000)
    paced = paced_limits("even", limits, starts_at=START, ends_at=END, now=at(5), slack=0.05)
    assert (paced.max_coupons, paced.max_discount_total, paced.max_redemptions) == (55, 5500, 7)
    assert paced_limits("asap", limits, starts_at=START, ends_at=END, now=at(5)) == limits


def test_a_batch_reserving_at_once_cannot_run_past_the_paced_allowance() -> None:
    """Pacing held in the reservation itself: 30 coupons wanted in one call, at half-time of
    a 20-coupon campaign, get 10 (the usage read before the batch said 0 for all of them)."""
    store = InMemoryReservations()
    store.seed("cmp", Seed(issued=0, money=0, redeemed=0, serial=0, day="20261206"), 3600)
    limits = Limits(max_coupons=20)
    paced = paced_limits("even", limits, starts_at=START, ends_at=END, now=at(5), slack=0.0)
    wanted = [Wanted("cmp", f"c{i}", "20261206", 50, paced, 3600) for i in range(30)]
    taken = store.reserve_many(wanted)
    refused = [t for t in taken if isinstance(t, Refused)]
    assert len(taken) - len(refused) == 10
    after = store.usage("cmp", "c0", "20261206")
    assert after is not None
    assert {budget_refusal("even", limits, after, 50) for _ in refused} == {"paced"}
    assert budget_refusal("asap", limits, after, 50) == "budget_exhausted"


def test_a_refusal_is_the_budget_when_the_budget_itself_is_spent() -> None:
    limits = Limits(max_coupons=20, max_discount_total=1_000)
    assert budget_refusal("even", limits, Usage(issued=20, money=0, redeemed=0), 50) == (
        "budget_exhausted"
    )
    assert budget_refusal("even", limits, Usage(issued=3, money=960, redeemed=0), 50) == (
        "budget_exhausted"
    )
    assert budget_refusal("even", limits, Usage(issued=3, money=950, redeemed=0), 50) == "paced"


def test_the_slack_is_configured_by_tenin_pacing_slack(tmp_path: Path) -> None:
    env = {"TENIN_DATA_DIR": str(tmp_path), "TENIN_PACING_SLACK": "0.2"}
    engine = bootstrap(Settings.from_env(env))
    try:
        assert engine.policy.pacing_slack == 0.2
    finally:
        engine.db.dispose()
    assert Settings.from_env({"TENIN_DATA_DIR": str(tmp_path)}).pacing_slack == 0.05
    with pytest.raises(ValueError, match="pacing_slack"):
        bootstrap(Settings.from_env({**env, "TENIN_PACING_SLACK": "2"}))
