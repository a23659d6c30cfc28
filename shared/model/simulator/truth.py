"""Ground truth: how a simulated customer really responds. Only tests and benchmarks may look."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.model.features import DecisionContext, OfferFeatures, intent_matches
from shared.model.simulator.catalog import ITEMS, SIM_CATEGORIES, Item
from shared.model.simulator.population import Customer, ResponseType

MARGIN_RATE = 0.30  # gross margin on a convenience-store basket
DEFAULT_WINDOW_DAYS = 3.0  # coupon validity, as in the Lawson LINE drop
_CATEGORY_INDEX = {c: i for i, c in enumerate(SIM_CATEGORIES)}


@dataclass(frozen=True)
class TypeResponse:
    """How one response type reacts to an offer."""

    base_logit: float  # redemption log-odds of a plain offer
    depth_slope: float  # extra log-odds per unit of discount depth (x price sensitivity)
    basket_lift: float  # a redeeming basket is this much bigger
    extra_visit_share: (
        float  # share of redemptions that are visits the customer would not have made
    )
    contact_drop: float  # share of natural visits lost while the contact annoys them


RESPONSE: dict[ResponseType, TypeResponse] = {
    ResponseType.PERSUADABLE: TypeResponse(-4.35, 7.0, 0.25, 0.90, 0.0),
    ResponseType.SURE_THING: TypeResponse(-2.75, 1.5, 0.05, 0.05, 0.0),
    ResponseType.LOST_CAUSE: TypeResponse(-5.25, 1.0, 0.15, 0.60, 0.0),
    ResponseType.DO_NOT_DISTURB: TypeResponse(-4.85, 1.0, 0.0, 0.20, 0.35),
}


@dataclass(frozen=True)
class Basket:
    """What one visit puts through the till."""

    items: tuple[tuple[Item, int], ...]  # (item, quantity)

    @property
    def total(self) -> int:
        """Basket value in yen, before any coupon."""
        return sum(item.price * qty for item, qty in self.items)

    @property
    def categories(self) -> frozenset[str]:
        """Categories present in the basket."""
        return frozenset(item.category for item, _ in self.items)


def _clipped_log(x: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, math.log(x + 0.05)))


def p_redeem_many(
    customer: Customer, context: DecisionContext, offers: Sequence[OfferFeatures]
) -> np.ndarray:
    """P(the coupon is redeemed within its validity window) for each offer."""
    t = customer.traits
    resp = RESPONSE[t.response_type]
    # Terms that do not depend on the offer: mood, habits, how often they come anyway.
    shared_logit = (
        resp.base_logit
        + 0.5 * context.sentiment
        + 0.4 * _clipped_log(float(t.hour_profile[context.local_hour % 24]) * 24, -2.0, 1.5)
        + 0.5 * min(1.5, max(-1.5, math.log(t.visit_rate / 0.3)))
    )
    if context.weekday >= 5:
        shared_logit += 0.5 * math.log(t.weekend_factor)
    if context.intent == "deal_seeking" and t.response_type == ResponseType.PERSUADABLE:
        shared_logit += 0.5
    if context.intent == "complaint":
        shared_logit -= 0.8
    n_cat = len(SIM_CATEGORIES)
    out = np.empty(len(offers))
    for i, o in enumerate(offers):
        ci = _CATEGORY_INDEX.get(o.category)
        taste = float(t.tastes[ci]) * n_cat if ci is not None else 0.3
        logit = (
            shared_logit
            + resp.depth_slope * t.price_sensitivity * o.discount_yen / t.basket_mean
            + 0.7 * _clipped_log(taste, -2.0, 1.5)
            + (0.6 if intent_matches(context.intent, o.category) else 0.0)
            - 3.0 * max(0.0, o.min_basket / t.basket_mean - 0.8)
            + (0.25 if o.discount_type == "free_item" else 0.0)
        )
        out[i] = 1.0 / (1.0 + math.exp(-logit))
    return out


def p_redeem(customer: Customer, context: DecisionContext, offer: OfferFeatures) -> float:
    """P(redeem | customer, context, offer): the hidden truth the model tries to learn."""
    return float(p_redeem_many(customer, context, [offer])[0])


def daily_visit_rate(customer: Customer, weekday: int | None = None) -> float:
    """Natural visits per day (averaged over the week when weekday is None)."""
    t = customer.traits
    if weekday is None:
        return t.visit_rate * (5.0 + 2.0 * t.weekend_factor) / 7.0
    return t.visit_rate * (t.weekend_factor if weekday >= 5 else 1.0)


def contact_drop(customer: Customer, context: DecisionContext) -> float:
    """Share of natural visits lost in the window after being sent a coupon."""
    # Anyone in a sour mood minds a sales pitch a little; do-not-disturb types mind it a lot.
    sour = max(0.0, -context.sentiment)
    drop = RESPONSE[customer.traits.response_type].contact_drop
    return min(0.9, drop * (1.0 + sour) + 0.15 * sour)


def expected_basket(
    customer: Customer, with_coupon: bool, offer: OfferFeatures | None = None
) -> float:
    """Mean basket value in yen of one visit."""
    t = customer.traits
    value = t.basket_mean * (1.0 + (RESPONSE[t.response_type].basket_lift if with_coupon else 0.0))
    return max(value, offer.min_basket) if with_coupon and offer is not None else value


def basket(
    customer: Customer,
    with_coupon: bool,
    rng: np.random.Generator,
    offer: OfferFeatures | None = None,
) -> Basket:
    """Draw the basket of one visit; with a coupon it is bigger and meets the offer's terms."""
    t = customer.traits
    target = rng.gamma(4.0, t.basket_mean / 4.0)
    chosen: list[tuple[Item, int]] = []
    total = 0
    if with_coupon:
        target *= 1.0 + RESPONSE[t.response_type].basket_lift
        if offer is not None:
            target = max(target, offer.min_basket)
            if offer.category in ITEMS:
                pool = ITEMS[offer.category]
                item = pool[int(rng.integers(len(pool)))]
                chosen.append((item, 1))
                total += item.price
    # Stopping short of the target offsets the overshoot of the last item, so the mean tracks basket_mean.
    while (
        not chosen
        or total < target - 200
        or (with_coupon and offer is not None and total < offer.min_basket)
    ):
        cat = SIM_CATEGORIES[int(rng.choice(len(SIM_CATEGORIES), p=t.tastes))]
        item = ITEMS[cat][int(rng.integers(len(ITEMS[cat])))]
        qty = 2 if rng.random() < 0.15 else 1
        chosen.append((item, qty))
        total += item.price * qty
    return Basket(tuple(chosen))


def incremental_profit(
    customer: Customer,
    context: DecisionContext,
    offers: Sequence[OfferFeatures],
    window_days: float = DEFAULT_WINDOW_DAYS,
    margin_rate: float = MARGIN_RATE,
) -> np.ndarray:
    """Expected yen each offer adds to the retailer's profit against sending nothing."""
    resp = RESPONSE[customer.traits.response_type]
    lam = daily_visit_rate(customer) * window_days
    lam_contacted = lam * (1.0 - contact_drop(customer, context))
    base_basket = customer.traits.basket_mean
    p = p_redeem_many(customer, context, offers)
    big = np.array([expected_basket(customer, True, o) for o in offers])
    discount = np.array([o.discount_yen for o in offers])
    no_natural_visit = np.exp(-lam_contacted)
    # An extra visit adds its whole basket; a redemption on a visit that was coming anyway
    # adds only the basket lift (unless no such visit came, then it is extra after all).
    added = resp.extra_visit_share * big + (1.0 - resp.extra_visit_share) * (
        no_natural_visit * big + (1.0 - no_natural_visit) * (big - base_basket)
    )
    lost = (lam - lam_contacted) * base_basket
    return margin_rate * (p * added - lost) - p * discount


@dataclass(frozen=True)
class WindowOutcome:
    """What one customer did during a coupon's validity window."""

    purchases: int
    spend: float  # yen, before discounts
    redeemed: bool


def draw_window_outcome(
    customer: Customer,
    context: DecisionContext,
    offer: OfferFeatures,
    treated: bool,
    rng: np.random.Generator,
    window_days: float = DEFAULT_WINDOW_DAYS,
) -> WindowOutcome:
    """Draw the window's purchases for a customer sent `offer` (treated) or held out; means match incremental_profit."""
    t = customer.traits
    resp = RESPONSE[t.response_type]
    lam = daily_visit_rate(customer) * window_days
    if treated:
        lam *= 1.0 - contact_drop(customer, context)
    natural = int(rng.poisson(lam))
    spend = float(rng.gamma(4.0 * natural, t.basket_mean / 4.0)) if natural else 0.0
    redeemed = treated and bool(rng.random() < p_redeem(customer, context, offer))
    if not redeemed:
        return WindowOutcome(natural, spend, False)
    big = expected_basket(customer, True, offer)
    if natural == 0 or rng.random() < resp.extra_visit_share:
        return WindowOutcome(natural + 1, spend + float(rng.gamma(4.0, big / 4.0)), True)
    # Redeemed on a visit that was coming anyway: only the bigger basket is new.
    return WindowOutcome(natural, spend + (big - t.basket_mean) * float(rng.gamma(4.0, 0.25)), True)
