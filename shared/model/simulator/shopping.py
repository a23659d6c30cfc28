"""Days of shopping: the visits a population makes, and the coupons it redeems on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from shared.model.features import INTENTS, DecisionContext, OfferFeatures
from shared.model.simulator.population import STORES, Customer, Population, ResponseType
from shared.model.simulator.truth import (
    RESPONSE,
    Basket,
    basket,
    contact_drop,
    daily_visit_rate,
    p_redeem,
)

# How often the chat hears each intent; "deal_seeking" customers ask outright for coupons.
_INTENT_SHARE = {
    "other": 0.10,
    "greeting": 0.22,
    "smalltalk": 0.18,
    "hungry": 0.14,
    "thirsty": 0.09,
    "craving_sweet": 0.08,
    "coffee": 0.08,
    "deal_seeking": 0.07,
    "complaint": 0.04,
}
assert set(_INTENT_SHARE) == set(INTENTS)
# What a response type lets slip in the chat: bargain hunters ask for deals, the easily
# annoyed complain and sound sour. This is the observable trace the uplift model can find.
_TYPE_TILT: dict[ResponseType, dict[str, float]] = {
    ResponseType.PERSUADABLE: {"deal_seeking": 4.0},
    ResponseType.DO_NOT_DISTURB: {"complaint": 5.0, "greeting": 0.6},
}
_MOOD = {ResponseType.DO_NOT_DISTURB: -0.3}
_INTENT_NAMES = tuple(_INTENT_SHARE)


def _intent_cdf(rtype: ResponseType) -> np.ndarray:
    tilt = _TYPE_TILT.get(rtype, {})
    w = np.array([share * tilt.get(name, 1.0) for name, share in _INTENT_SHARE.items()])
    return np.cumsum(w / w.sum())


_INTENT_CDF = {rtype: _intent_cdf(rtype) for rtype in ResponseType}


def random_context(
    customer: Customer, rng: np.random.Generator, weekday: int | None = None
) -> DecisionContext:
    """A chat request from this customer: mostly at their usual hours; intent and mood by type."""
    t = customer.traits
    if rng.random() < 0.6:
        hour = min(23, int(np.searchsorted(np.cumsum(t.hour_profile), rng.random())))
    else:
        hour = int(rng.random() * 24)
    cdf = _INTENT_CDF[t.response_type]
    intent = _INTENT_NAMES[min(len(_INTENT_NAMES) - 1, int(np.searchsorted(cdf, rng.random())))]
    mood = -0.5 if intent == "complaint" else 0.15 + _MOOD.get(t.response_type, 0.0)
    sentiment = float(np.clip(rng.normal(mood, 0.35), -1.0, 1.0))
    return DecisionContext(
        local_hour=hour,
        weekday=int(rng.random() * 7) if weekday is None else weekday,
        intent=intent,
        sentiment=round(sentiment, 2),
        language=customer.language,
    )


@dataclass
class Visit:
    """One trip to the till."""

    transaction_id: str
    store_id: str
    customer: Customer
    occurred_at: datetime
    basket: Basket
    coupon_codes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Basket value in yen."""
        return self.basket.total

    def to_pos_transaction(self) -> dict[str, Any]:
        """The transaction object as a store's POS would post it (docs/interfaces.md § POS feed)."""
        return {
            "transaction_id": self.transaction_id,
            "occurred_at": self.occurred_at.isoformat(),
            "member_id": self.customer.member_id,
            "currency": "JPY",
            "total": self.total,
            "items": [
                {"sku": item.sku, "category": item.category, "qty": qty, "unit_price": item.price}
                for item, qty in self.basket.items
            ],
            "coupon_codes": list(self.coupon_codes),
        }


@dataclass
class _HeldCoupon:
    code: str
    offer: OfferFeatures
    expires_at: datetime
    redeem_at: datetime | None  # drawn at issue: when (and whether) it will be used
    extra_visit: bool


class ShoppingSimulator:
    """Generates each day's visits; coupons handed out are redeemed as the hidden truth says."""

    def __init__(self, population: Population, seed: int = 0) -> None:
        self.population = population
        self._rng = np.random.default_rng([population.seed, seed, 3])
        self._held: dict[int, list[_HeldCoupon]] = {}
        self._annoyed: dict[int, tuple[datetime, float]] = {}  # until, share of visits lost
        self._counter = 0

    def issue_coupon(
        self,
        customer_id: str,
        code: str,
        offer: OfferFeatures,
        context: DecisionContext,
        issued_at: datetime,
        expires_at: datetime,
    ) -> bool:
        """Hand a coupon to a customer; returns whether they will redeem it (for tests)."""
        customer = self.population.by_id(customer_id)
        resp = RESPONSE[customer.traits.response_type]
        drop = contact_drop(customer, context)
        if drop > 0:
            self._annoyed[customer.index] = (expires_at, drop)
        redeem = bool(self._rng.random() < p_redeem(customer, context, offer))
        redeem_at = None
        if redeem:
            span = max(60.0, (expires_at - issued_at).total_seconds())
            redeem_at = issued_at + timedelta(seconds=float(self._rng.uniform(60.0, span)))
        extra = bool(self._rng.random() < resp.extra_visit_share)
        self._held.setdefault(customer.index, []).append(
            _HeldCoupon(code, offer, expires_at, redeem_at, extra)
        )
        return redeem

    def day(self, day: date) -> list[Visit]:
        """Every visit on `day`, in time order (store-local times)."""
        start = datetime(day.year, day.month, day.day, tzinfo=self.population.start.tzinfo)
        end = start + timedelta(days=1)
        rng = self._rng
        visits: list[Visit] = []
        for c in self.population:
            rate = daily_visit_rate(c, start.weekday())
            annoyed = self._annoyed.get(c.index)
            if annoyed and annoyed[0] > start:
                rate *= 1.0 - annoyed[1]
            times = sorted(
                start
                + timedelta(
                    hours=int(rng.choice(24, p=c.traits.hour_profile)),
                    seconds=float(rng.uniform(0, 3600)),
                )
                for _ in range(int(rng.poisson(rate)))
            )
            natural = [self._visit(c, at, None) for at in times]
            for coupon in list(self._held.get(c.index, [])):
                if coupon.redeem_at is None:
                    if coupon.expires_at < end:
                        self._held[c.index].remove(coupon)
                    continue
                if not start <= coupon.redeem_at < end:
                    continue
                later = [
                    v
                    for v in natural
                    if coupon.redeem_at <= v.occurred_at < coupon.expires_at and not v.coupon_codes
                ]
                if not coupon.extra_visit and later:
                    # The customer was coming anyway: the coupon rides on that visit.
                    later[0].basket = basket(c, True, rng, coupon.offer)
                    later[0].coupon_codes.append(coupon.code)
                elif not coupon.extra_visit and end < coupon.expires_at:
                    coupon.redeem_at = end  # wait for tomorrow's visit
                    continue
                else:
                    at = coupon.redeem_at
                    if at == start:  # carried over: come at a usual hour, before it expires
                        habit = start + timedelta(
                            hours=int(rng.choice(24, p=c.traits.hour_profile))
                        )
                        at = max(start, min(habit, coupon.expires_at - timedelta(minutes=5)))
                    natural.append(self._visit(c, at, coupon))
                self._held[c.index].remove(coupon)
            visits.extend(natural)
        visits.sort(key=lambda v: v.occurred_at)
        return visits

    def _visit(self, c: Customer, at: datetime, coupon: _HeldCoupon | None) -> Visit:
        self._counter += 1
        rng = self._rng
        store = (
            c.traits.home_store if rng.random() < 0.8 else STORES[int(rng.integers(len(STORES)))]
        )
        return Visit(
            transaction_id=f"{store}-{at:%Y%m%d}-{self._counter:06d}",
            store_id=store,
            customer=c,
            occurred_at=at,
            basket=basket(c, coupon is not None, rng, coupon.offer if coupon else None),
            coupon_codes=[coupon.code] if coupon else [],
        )
