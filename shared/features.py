"""THE feature definition: one vector layout shared by training and serving so they cannot drift."""

from __future__ import annotations

import json
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
# The chat agent's intent names (services/chat_agent/understanding) mapped onto the
# model's vocabulary, so what the clerk heard reaches the model as a known intent.
CHAT_INTENT_ALIASES: Mapping[str, str] = {
    "wants_deals": "deal_seeking",
    "small_talk": "smalltalk",
    "follow": "greeting",
    "thanks": "smalltalk",
}
# A product question names a category; the model knows it as a craving.
PRODUCT_CATEGORY_INTENTS: Mapping[str, str] = {
    "onigiri": "hungry",
    "bento": "hungry",
    "bakery": "hungry",
    "drinks": "thirsty",
    "coffee": "coffee",
    "sweets": "craving_sweet",
    "snacks": "craving_sweet",
}


def model_intent(intent: str) -> str:
    """The model's name for an intent from the chat ("product_question:coffee" → "coffee")."""
    if intent.startswith("product_question:"):
        return PRODUCT_CATEGORY_INTENTS.get(intent.split(":", 1)[1], "other")
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

# HGETALL packed into one JSON string: redis-py parses a 40-element array reply in Python,
# which costs more CPU per decision than the model; a single bulk string is parsed in C.
_READ = "return cjson.encode(redis.call('HGETALL', KEYS[1]))"


class CustomerFeatureStore:
    """Per-customer aggregates in one Redis hash each, kept current by the engine's consumers."""

    def __init__(self, client: Any, prefix: str = "tenin:cf:") -> None:
        self._redis = client
        self._prefix = prefix
        self._record_sale = client.register_script(_RECORD_SALE)
        self._read = client.register_script(_READ)

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

    def load_aggregates(self, customer_id: str, fields: Mapping[str, float]) -> None:
        """Replace a customer's counters wholesale (seeding a demo or benchmark from simulated history)."""
        key = self._key(customer_id)
        pipe = self._redis.pipeline()
        pipe.delete(key)
        if fields:
            pipe.hset(key, mapping={k: float(v) for k, v in fields.items()})
        pipe.execute()

    def aggregates(self, customer_id: str) -> dict[str, str]:
        """The raw hash fields as str (one round trip)."""
        flat = json.loads(self._read(keys=[self._key(customer_id)]))
        # An empty hash comes back as "{}"; otherwise a flat [field, value, ...] list.
        return dict(zip(flat[::2], flat[1::2], strict=True)) if isinstance(flat, list) else {}

    def get(self, customer_id: str, now: datetime | float) -> CustomerFeatures:
        """The customer's features at `now`; an unknown customer gets the defaults."""
        ts = now.timestamp() if isinstance(now, datetime) else float(now)
        return features_from_aggregates(self.aggregates(customer_id), ts)
