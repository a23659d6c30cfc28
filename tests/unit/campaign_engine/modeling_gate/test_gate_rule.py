"""The promotion gate's rule and its configured margin, as pure functions."""

from __future__ import annotations

import pytest

from services.campaign_engine.modeling.evaluate import Estimate
from services.campaign_engine.modeling.gate import (
    DEFAULT_MARGINS,
    judge,
    promotion_margin,
)

CHAMPION = Estimate(10.0, 9.0, 11.0, 4000)


def test_a_candidate_whose_lower_bound_clears_the_champion_less_the_margin_is_promoted() -> None:
    verdict = judge(Estimate(10.5, 9.5, 11.5, 4000), CHAMPION, margin=1.0)
    assert verdict.promote and "DR lower bound 9.50 >= 9.00" in verdict.reason
    assert verdict.as_json()["passed"] is True and verdict.as_json()["margin"] == 1.0


def test_a_candidate_whose_lower_bound_falls_further_than_the_margin_is_refused() -> None:
    verdict = judge(Estimate(10.5, 8.9, 12.1, 4000), CHAMPION, margin=1.0)
    assert not verdict.promote and "8.90 is below 9.00 (the champion's 10.00" in verdict.reason
    assert judge(Estimate(10.5, 8.9, 12.1, 4000), CHAMPION, margin=1.2).promote


def test_without_a_champion_any_estimated_candidate_serves_but_an_unestimated_one_never() -> None:
    assert judge(Estimate(1.0, -5.0, 7.0, 10), None, 1.0).promote
    assert not judge(Estimate(float("nan"), float("nan"), float("nan"), 0), CHAMPION, 1.0).promote
    assert not judge(None, None, 1.0).promote


def test_the_margin_comes_from_the_environment_with_a_documented_default() -> None:
    assert promotion_margin({}, "propensity") == DEFAULT_MARGINS["propensity"] == 2.0
    assert promotion_margin({}, "uplift") == DEFAULT_MARGINS["uplift"]
    assert promotion_margin({"TENIN_PROMOTION_MARGIN": " 2.5 "}, "uplift") == 2.5
    for bad in ("lots", "-1", "inf"):
        with pytest.raises(ValueError, match="TENIN_PROMOTION_MARGIN"):
            promotion_margin({"TENIN_PROMOTION_MARGIN": bad}, "propensity")


def test_a_paired_difference_judges_the_candidate_by_champion_plus_its_lower_bound() -> None:
    wide = Estimate(10.2, 4.0, 16.4, 4000)  # alone, its interval is too wide to pass
    assert not judge(wide, CHAMPION, margin=1.0).promote
    tight = Estimate(0.2, -0.5, 0.9, 4000)  # candidate - champion on the same decisions
    verdict = judge(wide, CHAMPION, margin=1.0, difference=tight)
    assert verdict.promote and "paired DR lower bound 9.50 >= 9.00" in verdict.reason
    assert verdict.as_json()["difference_dr"]["low"] == -0.5
    worse = Estimate(-1.5, -2.2, -0.8, 4000)
    assert not judge(wide, CHAMPION, margin=1.0, difference=worse).promote
