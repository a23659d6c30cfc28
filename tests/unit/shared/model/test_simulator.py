"""The simulated shoppers: seeded, realistic base rates, and a truth that tenin's serving code never sees."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date, timedelta

import numpy as np
import pytest

from shared.model.features import DecisionContext, OfferFeatures
from shared.model.simulator import (
    DEFAULT_START,
    MARGIN_RATE,
    Population,
    ResponseType,
    ShoppingSimulator,
    basket,
    draw_window_outcome,
    incremental_profit,
    p_redeem,
    p_redeem_many,
    random_context,
    sample_offers,
)


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.generate(1500, seed=11)


def test_same_seed_same_people_other_seed_other_people() -> None:
    a, b, c = Population.generate(50, 3), Population.generate(50, 3), Population.generate(50, 4)
    assert [x.customer_id for x in a] == [x.customer_id for x in b]
    assert [x.traits.visit_rate for x in a] == [x.traits.visit_rate for x in b]
    assert {x.customer_id for x in a}.isdisjoint({x.customer_id for x in c})


def test_identities_look_like_the_real_ones(population: Population) -> None:
    assert len({c.customer_id for c in population}) == len(population)
    for c in population:
        assert re.fullmatch(r"M\d{6}", c.member_id)
        assert re.fullmatch(r"U[0-9a-f]{32}", c.user_id)
        assert c.language in ("ja", "en", "id")
    assert population.by_id(population[5].customer_id) is population[5]
    languages = [c.language for c in population]
    assert languages.count("ja") / len(languages) > 0.75


def test_all_four_response_types_are_present_in_sensible_shares(population: Population) -> None:
    shares = {t: 0 for t in ResponseType}
    for c in population:
        shares[c.traits.response_type] += 1
    for t in ResponseType:
        assert 0.10 < shares[t] / len(population) < 0.45, t


def test_base_redemption_rates_sit_in_the_social_coupon_range(population: Population) -> None:
    """Lawson's LINE drop saw ~6.7% against ~3% typical; the average offer should land in between."""
    rng = np.random.default_rng(1)
    p = [p_redeem_many(c, random_context(c, rng), sample_offers(rng, 4)).mean() for c in population]
    print(f"mean P(redeem) over random offers: {np.mean(p):.3%}")
    assert 0.03 <= np.mean(p) <= 0.07


def test_persuadables_respond_to_depth_and_sure_things_much_less(population: Population) -> None:
    ctx = DecisionContext(local_hour=12, weekday=2, intent="other", sentiment=0.0)
    shallow, deep = OfferFeatures("amount", 30, "drinks"), OfferFeatures("amount", 200, "drinks")

    def mean_lift(rtype: ResponseType) -> float:
        people = [c for c in population if c.traits.response_type == rtype]
        return float(np.mean([p_redeem(c, ctx, deep) / p_redeem(c, ctx, shallow) for c in people]))

    assert mean_lift(ResponseType.PERSUADABLE) > 2.0 * mean_lift(ResponseType.SURE_THING)
    people = [c for c in population if c.traits.response_type == ResponseType.PERSUADABLE]
    assert np.mean([p_redeem(c, ctx, deep) for c in people]) > 0.10


def test_incremental_profit_by_type_tells_the_uplift_story(population: Population) -> None:
    rng = np.random.default_rng(2)
    by_type: dict[ResponseType, list[float]] = {t: [] for t in ResponseType}
    for c in population:
        by_type[c.traits.response_type].extend(
            incremental_profit(c, random_context(c, rng), sample_offers(rng, 3))
        )
    mean = {t: float(np.mean(v)) for t, v in by_type.items()}
    assert mean[ResponseType.PERSUADABLE] > 0
    assert mean[ResponseType.SURE_THING] < 0  # they pay the discount on a visit they made anyway
    assert mean[ResponseType.DO_NOT_DISTURB] < mean[ResponseType.SURE_THING]


def test_drawn_outcomes_match_the_analytic_truth(population: Population) -> None:
    """The window simulation and incremental_profit are two views of one truth; they must agree."""
    c = next(c for c in population if c.traits.response_type == ResponseType.PERSUADABLE)
    ctx = DecisionContext(local_hour=12, weekday=2, intent="deal_seeking", sentiment=0.3)
    offer = OfferFeatures("amount", 150, "onigiri")
    rng = np.random.default_rng(3)
    n = 15_000
    treated = [draw_window_outcome(c, ctx, offer, True, rng) for _ in range(n)]
    control = [draw_window_outcome(c, ctx, offer, False, rng) for _ in range(n)]
    profit = MARGIN_RATE * (
        np.array([o.spend for o in treated]) - np.array([o.spend for o in control])
    ) - offer.discount_yen * np.array([o.redeemed for o in treated])
    expected = float(incremental_profit(c, ctx, [offer])[0])
    se = profit.std() / np.sqrt(n)
    assert abs(profit.mean() - expected) < 4 * se
    assert abs(np.mean([o.redeemed for o in treated]) - p_redeem(c, ctx, offer)) < 0.01
    assert not any(o.redeemed for o in control)


def test_baskets_look_like_a_convenience_store(population: Population) -> None:
    rng = np.random.default_rng(4)
    totals = [basket(c, False, rng).total for c in population]
    assert 600 <= np.mean(totals) <= 900
    offer = OfferFeatures("amount", 100, "bento", min_basket=1000)
    for c in population[:200]:
        b = basket(c, True, rng, offer)
        assert b.total >= 1000 and "bento" in b.categories


def test_coupons_handed_out_are_redeemed_at_the_truth_rate(population: Population) -> None:
    shop = ShoppingSimulator(population, seed=5)
    rng = np.random.default_rng(5)
    issued_at = DEFAULT_START + timedelta(hours=9)
    expires = issued_at + timedelta(days=3)
    expected, codes = 0.0, {}
    for i, c in enumerate(population):
        ctx = random_context(c, rng)
        offer = sample_offers(rng, 1)[0]
        code = f"TN-{i:05d}"
        codes[code] = offer
        shop.issue_coupon(c.customer_id, code, offer, ctx, issued_at, expires)
        expected += p_redeem(c, ctx, offer)
    visits = [v for d in range(4) for v in shop.day(date(2026, 11, 2) + timedelta(days=d))]
    redeemed = [(v, code) for v in visits for code in v.coupon_codes]
    assert len({code for _, code in redeemed}) == len(redeemed)  # never twice
    sd = np.sqrt(expected)
    assert abs(len(redeemed) - expected) < 4 * sd, (len(redeemed), expected)
    for v, code in redeemed:
        assert issued_at <= v.occurred_at <= expires
        assert v.total >= codes[code].min_basket
    tx = visits[0].to_pos_transaction()
    assert set(tx) == {
        "transaction_id",
        "occurred_at",
        "member_id",
        "currency",
        "total",
        "items",
        "coupon_codes",
    }
    assert tx["total"] == sum(i["qty"] * i["unit_price"] for i in tx["items"])
    assert len({v.transaction_id for v in visits}) == len(visits)


def test_serving_code_never_imports_the_truth() -> None:
    code = (
        "import sys, shared.model.features, shared.model.scoring, services.campaign_engine.decisions.policy;"
        "print('shared.model.simulator' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
