"""THE feature definition: one vector layout shared by training and serving so they cannot drift."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from shared.events import CATEGORY_INTENTS, DEFAULT_LANGUAGE

CATEGORIES: tuple[str, ...] = (
    "onigiri",
    "bento",
    "drinks",
    "sweets",
    "coffee",
    "bakery",
    "snacks",
    "daily",
    "other",
)
DISCOUNT_TYPES: tuple[str, ...] = ("amount", "percent", "free_item")
INTENTS: tuple[str, ...] = (
    "other",
    "greeting",
    "smalltalk",
    "hungry",
    "thirsty",
    "craving_sweet",
    "coffee",
    "deal_seeking",
    "complaint",
)
# Which offer categories an intent from the chat makes relevant ("deal_seeking" fits any offer).
INTENT_CATEGORIES: Mapping[str, frozenset[str]] = {
    "hungry": frozenset({"onigiri", "bento", "bakery"}),
    "thirsty": frozenset({"drinks", "coffee"}),
    "craving_sweet": frozenset({"sweets", "snacks", "bakery"}),
    "coffee": frozenset({"coffee", "bakery", "sweets"}),
    "deal_seeking": frozenset(CATEGORIES),
}
# The chat agent's intent names (services/chat_agent/understanding) mapped onto the
# model's vocabulary, so what the clerk heard reaches the model as a known intent.
CHAT_INTENT_ALIASES: Mapping[str, str] = {
    "wants_deals": "deal_seeking",
    "small_talk": "smalltalk",
    "follow": "greeting",
    "thanks": "smalltalk",
}


def model_intent(intent: str) -> str:
    """The model's name for an intent from the chat ("product_question:coffee" → "coffee")."""
    if intent.startswith("product_question:"):
        return CATEGORY_INTENTS.get(intent.split(":", 1)[1], "other")
    return CHAT_INTENT_ALIASES.get(intent, intent)


HOUR_BANDS = 6  # 4-hour bands of the local day: 0-3, 4-7, ..., 20-23
RECENCY_CAP_DAYS = 90.0
FOLLOW_CAP_DAYS = 365.0
# Prior for the smoothed redemption rate: a customer with no coupons yet looks average (~5%).
REDEMPTION_PRIOR_RATE = 0.05
REDEMPTION_PRIOR_WEIGHT = 2.0
DEFAULT_TYPICAL_BASKET = 750.0  # yen; a convenience-store basket

FEATURE_NAMES: tuple[str, ...] = (
    # customer, from sale.recorded / customer.events / coupon.events
    "recency_days",
    "frequency_per_week",
    "monetary_avg",
    "days_since_follow",
    "coupons_issued",
    "past_redemption_rate",
    "linked",
    # context of the request
    "local_hour",
    "weekday",
    "intent",
    "sentiment",
    "hour_affinity",
    # offer
    "discount_depth",
    "discount_type",
    "category",
    "min_basket_ratio",
    # customer x offer
    "category_affinity",
    "intent_match",
    "min_basket_vs_monetary",
)
N_FEATURES = len(FEATURE_NAMES)
_CATEGORY_CODE = {c: i for i, c in enumerate(CATEGORIES)}
_TYPE_CODE = {t: i for i, t in enumerate(DISCOUNT_TYPES)}
_INTENT_CODE = {t: i for i, t in enumerate(INTENTS)}


@dataclass(frozen=True)
class CustomerFeatures:
    """What tenin knows about one customer at decision time (never the simulator's hidden traits)."""

    recency_days: float = RECENCY_CAP_DAYS
    frequency_per_week: float = 0.0
    monetary_avg: float = 0.0
    days_since_follow: float = FOLLOW_CAP_DAYS
    coupons_issued: int = 0
    past_redemption_rate: float = REDEMPTION_PRIOR_RATE
    linked: bool = False
    category_share: Mapping[str, float] = field(default_factory=dict)
    hour_band_share: tuple[float, ...] = (0.0,) * HOUR_BANDS


@dataclass(frozen=True)
class DecisionContext:
    """The request: when it happens and what the chat says about the customer's mood and need."""

    local_hour: int
    weekday: int  # Monday = 0
    intent: str = "other"
    sentiment: float = 0.0  # -1 .. 1
    language: str = DEFAULT_LANGUAGE  # for wording the offer; not a model feature


@dataclass(frozen=True)
class OfferFeatures:
    """One candidate offer as the model sees it."""

    discount_type: Literal["amount", "percent", "free_item"]
    discount_value: float  # yen for amount, percent for percent, the item's price for free_item
    category: str
    min_basket: float = 0.0
    typical_basket: float = DEFAULT_TYPICAL_BASKET

    @property
    def discount_yen(self) -> float:
        """Face value of the discount in yen (a percent applies to a typical basket)."""
        if self.discount_type == "percent":
            return self.discount_value / 100.0 * self.typical_basket
        return float(self.discount_value)


def hour_band(hour: int) -> int:
    """The 4-hour band an hour of the day falls in."""
    return (int(hour) % 24) // 4


def intent_matches(intent: str, category: str) -> bool:
    """Whether what the customer said makes this offer's category relevant."""
    return category in INTENT_CATEGORIES.get(intent, frozenset())


def feature_matrix(
    customer: CustomerFeatures, context: DecisionContext, offers: Sequence[OfferFeatures]
) -> np.ndarray:
    """The float32 model input, one row per candidate offer, columns in FEATURE_NAMES order."""
    intent = model_intent(context.intent)
    band_share = customer.hour_band_share
    base = [
        customer.recency_days,
        customer.frequency_per_week,
        customer.monetary_avg,
        customer.days_since_follow,
        float(customer.coupons_issued),
        customer.past_redemption_rate,
        1.0 if customer.linked else 0.0,
        float(context.local_hour),
        float(context.weekday),
        float(_INTENT_CODE.get(intent, 0)),
        float(context.sentiment),
        band_share[hour_band(context.local_hour)] if band_share else 0.0,
    ]
    monetary = customer.monetary_avg
    shares = customer.category_share
    matching = INTENT_CATEGORIES.get(intent, frozenset())
    other = _CATEGORY_CODE["other"]
    n = len(offers)
    matrix = np.empty((n, N_FEATURES), dtype=np.float32)
    matrix[:, : len(base)] = base
    if n:
        offer_cols = []
        for offer in offers:
            typical = offer.typical_basket if offer.typical_basket > 0 else DEFAULT_TYPICAL_BASKET
            offer_cols.append(
                (
                    offer.discount_yen / typical,
                    _TYPE_CODE.get(offer.discount_type, -1),
                    _CATEGORY_CODE.get(offer.category, other),
                    offer.min_basket / typical,
                    shares.get(offer.category, 0.0),
                    1.0 if offer.category in matching else 0.0,
                    offer.min_basket / (monetary if monetary > 0 else typical),
                )
            )
        matrix[:, len(base) :] = offer_cols
    return matrix


def features_from_aggregates(agg: Mapping[str, Any], now: float) -> CustomerFeatures:
    """Turn the raw per-customer counters (Redis hash fields) into CustomerFeatures at time `now`."""
    # One pass over the fields: this runs on every decision, so it stays cheap.
    nums: dict[str, float] = {}
    cats: dict[str, float] = {}
    bands = [0.0] * HOUR_BANDS
    for key, raw in agg.items():
        if raw is None or raw == "":
            continue
        value = float(raw)
        if key.startswith("cat:"):
            cats[key[4:]] = value
        elif key.startswith("hb:"):
            band = int(key[3:])
            if 0 <= band < HOUR_BANDS:
                bands[band] = value
        else:
            nums[key] = value
    count = nums.get("sale_count", 0.0)
    last, first = nums.get("last_sale_ts", -1.0), nums.get("first_sale_ts", -1.0)
    follow = nums.get("follow_ts", -1.0)
    recency = RECENCY_CAP_DAYS
    if last >= 0:
        recency = min(RECENCY_CAP_DAYS, max(0.0, (now - last) / 86400.0))
    # Spread over at least two weeks, so one purchase yesterday does not read as 7 a week.
    span_days = max(14.0, (now - first) / 86400.0) if first >= 0 else 14.0
    issued = int(nums.get("issued", 0.0))
    redeemed = max(0.0, nums.get("redeemed", 0.0) - nums.get("voided", 0.0))
    since_follow = FOLLOW_CAP_DAYS
    if follow >= 0:
        since_follow = min(FOLLOW_CAP_DAYS, max(0.0, (now - follow) / 86400.0))
    return CustomerFeatures(
        recency_days=recency,
        frequency_per_week=count * 7.0 / span_days,
        monetary_avg=nums.get("sale_total", 0.0) / count if count > 0 else 0.0,
        days_since_follow=since_follow,
        coupons_issued=issued,
        past_redemption_rate=(redeemed + REDEMPTION_PRIOR_WEIGHT * REDEMPTION_PRIOR_RATE)
        / (issued + REDEMPTION_PRIOR_WEIGHT),
        linked=nums.get("linked", 0.0) > 0,
        category_share={c: n / count for c, n in cats.items()} if count > 0 else {},
        hour_band_share=tuple(b / count for b in bands) if count > 0 else (0.0,) * HOUR_BANDS,
    )
