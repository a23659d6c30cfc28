"""Message cost in the policy: a pushed coupon must earn back its message too; replies are
unchanged. Pacing and push in the candidates (pure: no database, no Redis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from services.campaign_engine.budget.limits import Usage
from services.campaign_engine.campaigns.offers import stored_offer
from services.campaign_engine.decisions.candidates import (
    eligible_candidates,
    message_costs,
    no_candidate_reason,
    refused_reason,
    reservation_limits,
)
from services.campaign_engine.decisions.inputs import CustomerState
from services.campaign_engine.decisions.policy import PolicyConfig, choose_scored, decide
from services.campaign_engine.models import Campaign
from shared.model.features import CustomerFeatures, DecisionContext, OfferFeatures, feature_matrix
from tests.unit.campaign_engine.fakes import ConstantScorer, offer_spec

GREEDY = PolicyConfig(mode="greedy")
CONTEXT = DecisionContext(local_hour=12, weekday=2, intent="hungry", sentiment=0.2)
# Redemption value 0.3 x ¥750 - ¥50 = ¥175; at P(redeem) 0.5 the EV is ¥87.5.
ONIGIRI = OfferFeatures("amount", 50, "onigiri")
# Value 0.3 x ¥750 - ¥20 = ¥205; EV ¥102.5: the better offer when messages are free.
COFFEE = OfferFeatures("amount", 20, "coffee")
START = datetime(2026, 12, 1, tzinfo=UTC)


def choose(offers: list[OfferFeatures], costs: list[float] | None, p: float = 0.5) -> Any:
    return decide(
        ConstantScorer(p),
        CustomerFeatures(),
        CONTEXT,
        offers,
        GREEDY,
        np.random.default_rng(0),
        message_costs=costs,
    )


def test_a_push_is_sent_only_when_the_gain_covers_coupon_and_message() -> None:
    covered = choose([ONIGIRI], [80.0])
    assert covered.index == 0 and covered.expected_value == pytest.approx(7.5)
    not_covered = choose([ONIGIRI], [100.0])
    assert not_covered.index is None and not_covered.arm == "none"
    assert not_covered.values == pytest.approx((-12.5,))


def test_the_message_cost_can_change_which_offer_is_pushed() -> None:
    assert choose([ONIGIRI, COFFEE], None).index == 1
    # The coffee campaign's messages cost ¥30 more: the onigiri offer is now worth more.
    assert choose([ONIGIRI, COFFEE], [0.0, 30.0]).index == 0


def test_without_a_push_the_policy_is_exactly_as_before() -> None:
    plain = choose([ONIGIRI, COFFEE], None)
    free = choose([ONIGIRI, COFFEE], [0.0, 0.0])
    assert plain.values == free.values == pytest.approx((87.5, 102.5))
    assert (plain.index, plain.propensity, plain.arm) == (free.index, free.propensity, free.arm)


def test_the_uplift_value_is_less_the_message_cost_too() -> None:
    matrix = feature_matrix(CustomerFeatures(), CONTEXT, [ONIGIRI])
    p, treated, control = np.array([0.5]), np.array([600.0]), np.array([400.0])
    rng = np.random.default_rng(0)
    # 0.3 x ¥200 caused - 0.5 x ¥50 = ¥35; a ¥40 message makes it a loss.
    reply = choose_scored(matrix, p, treated, control, [ONIGIRI], GREEDY, rng)
    push = choose_scored(matrix, p, treated, control, [ONIGIRI], GREEDY, rng, message_costs=[40.0])
    assert reply.index == 0 and reply.values == pytest.approx((35.0,))
    assert push.index is None and push.values == pytest.approx((-5.0,))


def campaign(**over: Any) -> Campaign:
    fields: dict[str, Any] = {
        "campaign_id": "cmp-1",
        "number": 1,
        "status": "active",
        "starts_at": START,
        "ends_at": START + timedelta(days=10),
        "utc_offset_minutes": 540,
        "offers": [stored_offer(offer_spec(min_basket=0), index=0, offer_id="o1")],
        "budget": {"max_coupons": 100},
        "caps": {"per_customer_per_day": 1, "per_customer_total": None},
        "holdout_pct": 0.0,
        "audience": None,
        "message_cost": 3,
        "pacing": "even",
    }
    fields.update(over)
    return Campaign(**fields)


def candidates(campaigns: list[Campaign], usage: Usage, now: datetime, **kw: Any) -> Any:
    usages = {(c.campaign_id, "cust"): usage for c in campaigns}
    return eligible_candidates(
        usages, campaigns, "cust", "ja", CustomerFeatures(), CustomerState(), now, {}, **kw
    )


def test_a_pushed_candidate_carries_its_campaigns_message_cost() -> None:
    usage = Usage(issued=0, money=0, redeemed=0)
    now = START + timedelta(days=5)
    [replied], _ = candidates([campaign()], usage, now)
    [pushed], _ = candidates([campaign()], usage, now, push=True)
    assert (replied.message_cost, pushed.message_cost) == (0, 3)
    assert message_costs([replied]) is None and message_costs([pushed]) == [3.0]


def test_a_campaign_ahead_of_its_even_line_is_paced_and_says_so() -> None:
    now = START + timedelta(days=5)  # half the window: 50 of 100 coupons
    ahead = Usage(issued=52, money=0, redeemed=0)
    found, refusals = candidates([campaign()], ahead, now, pacing_slack=0.0)
    assert found == [] and refusals == ["paced"] and no_candidate_reason(refusals) == "paced"
    found, _ = candidates([campaign()], ahead, now, pacing_slack=0.05)
    assert len(found) == 1  # within the slack
    found, _ = candidates([campaign(pacing="asap")], ahead, now, pacing_slack=0.0)
    assert len(found) == 1


@pytest.mark.parametrize(
    ("refusals", "reason"),
    [
        (["paced"], "paced"),
        (["paced", "audience"], "paced"),
        (["paced", "max_coupons"], "budget_exhausted"),
        (["paced", "per_customer_per_day"], "cap_reached"),
        (["audience"], "no_eligible_offer"),
    ],
)
def test_paced_is_the_reason_only_when_nothing_else_stood_in_the_way(
    refusals: list[str], reason: str
) -> None:
    assert no_candidate_reason(refusals) == reason


def test_pacing_slack_is_bounded() -> None:
    with pytest.raises(ValueError, match="pacing_slack"):
        replace(GREEDY, pacing_slack=1.5)


def test_the_reservation_is_taken_under_the_paced_allowance() -> None:
    usage = Usage(issued=0, money=0, redeemed=0)
    now = START + timedelta(days=5)
    [even], _ = candidates([campaign()], usage, now)
    [asap], _ = candidates([campaign(pacing="asap")], usage, now)
    assert reservation_limits(even, now, pacing_slack=0.0).max_coupons == 50
    assert reservation_limits(asap, now, pacing_slack=0.0).max_coupons == 100
    assert refused_reason(even, Usage(issued=50, money=0, redeemed=0)) == "paced"
    assert refused_reason(even, Usage(issued=100, money=0, redeemed=0)) == "budget_exhausted"
    assert refused_reason(asap, Usage(issued=50, money=0, redeemed=0)) == "budget_exhausted"
    assert refused_reason(even, None) == "budget_exhausted"
