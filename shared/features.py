"""THE feature definition: one vector layout shared by training and serving so they cannot drift."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

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
    language: str = "ja"  # for wording the offer; not a model feature


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
        float(_INTENT_CODE.get(context.intent, 0)),
        float(context.sentiment),
        band_share[hour_band(context.local_hour)] if band_share else 0.0,
    ]
    monetary = customer.monetary_avg
    shares = customer.category_share
    matching = INTENT_CATEGORIES.get(context.intent, frozenset())
    rows = []
    for offer in offers:
        typical = offer.typical_basket if offer.typical_basket > 0 else DEFAULT_TYPICAL_BASKET
        rows.append(
            base
            + [
                offer.discount_yen / typical,
                float(_TYPE_CODE.get(offer.discount_type, -1)),
                float(_CATEGORY_CODE.get(offer.category, _CATEGORY_CODE["other"])),
                offer.min_basket / typical,
                shares.get(offer.category, 0.0),
                1.0 if offer.category in matching else 0.0,
                offer.min_basket / monetary if monetary > 0 else offer.min_basket / typical,
            ]
        )
    return np.array(rows, dtype=np.float32).reshape(len(rows), N_FEATURES)


def features_from_aggregates(agg: Mapping[str, Any], now: float) -> CustomerFeatures:
    """Turn the raw per-customer counters (Redis hash fields) into CustomerFeatures at time `now`."""

    def num(key: str, default: float = 0.0) -> float:
        value = agg.get(key)
        return default if value is None or value == "" else float(value)

    count = num("sale_count")
    last, first, follow = num("last_sale_ts", -1), num("first_sale_ts", -1), num("follow_ts", -1)
    recency = (
        min(RECENCY_CAP_DAYS, max(0.0, (now - last) / 86400.0)) if last >= 0 else RECENCY_CAP_DAYS
    )
    # Spread over at least two weeks, so one purchase yesterday does not read as 7 a week.
    span_days = max(14.0, (now - first) / 86400.0) if first >= 0 else 14.0
    issued = int(num("issued"))
    redeemed = max(0.0, num("redeemed") - num("voided"))
    category_share = {
        c: num(f"cat:{c}") / count for c in CATEGORIES if count > 0 and f"cat:{c}" in agg
    }
    bands = tuple(num(f"hb:{b}") / count if count > 0 else 0.0 for b in range(HOUR_BANDS))
    return CustomerFeatures(
        recency_days=recency,
        frequency_per_week=count * 7.0 / span_days,
        monetary_avg=num("sale_total") / count if count > 0 else 0.0,
        days_since_follow=(
            min(FOLLOW_CAP_DAYS, max(0.0, (now - follow) / 86400.0))
            if follow >= 0
            else FOLLOW_CAP_DAYS
        ),
        coupons_issued=issued,
        past_redemption_rate=(redeemed + REDEMPTION_PRIOR_WEIGHT * REDEMPTION_PRIOR_RATE)
        / (issued + REDEMPTION_PRIOR_WEIGHT),
        linked=num("linked") > 0,
        category_share=category_share,
        hour_band_share=bands,
    )


# Atomic min/max of the first/last sale times alongside the counters, in one round trip.
_RECORD_SALE = """
local key = KEYS[1]
local ts = tonumber(ARGV[2])
redis.call('HINCRBY', key, 'sale_count', 1)
redis.call('HINCRBYFLOAT', key, 'sale_total', ARGV[1])
local first = redis.call('HGET', key, 'first_sale_ts')
if (not first) or tonumber(first) > ts then redis.call('HSET', key, 'first_sale_ts', ARGV[2]) end
local last = redis.call('HGET', key, 'last_sale_ts')
if (not last) or tonumber(last) < ts then redis.call('HSET', key, 'last_sale_ts', ARGV[2]) end
redis.call('HINCRBY', key, ARGV[3], 1)
for i = 4, #ARGV do redis.call('HINCRBY', key, ARGV[i], 1) end
return 1
"""


class CustomerFeatureStore:
    """Per-customer aggregates in one Redis hash each, kept current by the engine's consumers."""

    def __init__(self, client: Any, prefix: str = "tenin:cf:") -> None:
        self._redis = client
        self._prefix = prefix
        self._record_sale = client.register_script(_RECORD_SALE)

    def _key(self, customer_id: str) -> str:
        return f"{self._prefix}{customer_id}"

    def record_sale(
        self, customer_id: str, total: float, occurred_at: datetime, categories: Iterable[str] = ()
    ) -> None:
        """Count a sale; the hour band uses occurred_at's own (store-local) offset."""
        cats = sorted({c if c in _CATEGORY_CODE else "other" for c in categories})
        self._record_sale(
            keys=[self._key(customer_id)],
            args=[float(total), occurred_at.timestamp(), f"hb:{hour_band(occurred_at.hour)}"]
            + [f"cat:{c}" for c in cats],
        )

    def record_follow(self, customer_id: str, at: datetime) -> None:
        """Remember when the customer (re)followed the account."""
        self._redis.hset(self._key(customer_id), "follow_ts", at.timestamp())

    def record_coupon_issued(self, customer_id: str) -> None:
        """Count a coupon issued to the customer."""
        self._redis.hincrby(self._key(customer_id), "issued", 1)

    def record_redemption(self, customer_id: str) -> None:
        """Count a redeemed coupon."""
        self._redis.hincrby(self._key(customer_id), "redeemed", 1)

    def record_void(self, customer_id: str) -> None:
        """Count a voided redemption (it cancels one redemption in the rate)."""
        self._redis.hincrby(self._key(customer_id), "voided", 1)

    def mark_linked(self, customer_id: str) -> None:
        """The customer linked a loyalty card, so their sales become visible."""
        self._redis.hset(self._key(customer_id), "linked", 1)

    def aggregates(self, customer_id: str) -> dict[str, str]:
        """The raw hash fields, decoded to str (one round trip)."""
        raw = self._redis.hgetall(self._key(customer_id))
        return {_text(k): _text(v) for k, v in raw.items()}

    def get(self, customer_id: str, now: datetime | float) -> CustomerFeatures:
        """The customer's features at `now`; an unknown customer gets the defaults."""
        ts = now.timestamp() if isinstance(now, datetime) else float(now)
        return features_from_aggregates(self.aggregates(customer_id), ts)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
