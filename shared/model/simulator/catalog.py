"""What the simulated stores sell, and the kinds of offers campaigns make."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.model.features import CATEGORIES, DEFAULT_TYPICAL_BASKET, OfferFeatures

# What the simulated shops sell: every category of the model but the catch-all "other".
SIM_CATEGORIES: tuple[str, ...] = tuple(c for c in CATEGORIES if c != "other")


@dataclass(frozen=True)
class Item:
    """A product on the shelf."""

    sku: str
    name: str
    category: str
    price: int  # yen


def _items() -> dict[str, tuple[Item, ...]]:
    table = {
        "onigiri": [
            ("tuna mayo onigiri", 150),
            ("salmon onigiri", 180),
            ("ume onigiri", 130),
            ("kombu onigiri", 140),
        ],
        "bento": [("karaage bento", 550), ("makunouchi bento", 650), ("hamburg bento", 598)],
        "drinks": [
            ("green tea 500ml", 140),
            ("mineral water", 110),
            ("cola", 170),
            ("sports drink", 160),
        ],
        "sweets": [("custard pudding", 220), ("cream puff", 180), ("chocolate bar", 150)],
        "coffee": [("hot coffee S", 120), ("cafe latte M", 180), ("iced coffee L", 200)],
        "bakery": [("melon pan", 150), ("curry pan", 180), ("egg sandwich", 320)],
        "snacks": [("potato chips", 160), ("fried chicken bites", 238), ("mixed nuts", 200)],
        "daily": [("pocket tissues", 250), ("toothbrush", 300), ("AA batteries", 450)],
    }
    out: dict[str, tuple[Item, ...]] = {}
    for ci, (cat, rows) in enumerate(table.items()):
        # JAN-style 13-digit codes, stable across runs.
        out[cat] = tuple(
            Item(f"49{ci:02d}{j:02d}00000{j:02d}", name, cat, price)
            for j, (name, price) in enumerate(rows)
        )
    return out


ITEMS: dict[str, tuple[Item, ...]] = _items()
_AMOUNTS = (30, 50, 80, 100, 150)
_PERCENTS = (10, 20, 30)
_MIN_BASKETS = (0, 0, 0, 300, 500, 700, 1000)
_CHEAP = {cat: tuple(i for i in items if i.price <= 250) for cat, items in ITEMS.items()}


def _pick(rng: np.random.Generator, options: tuple) -> Any:
    # rng.random() is far cheaper than rng.choice() for one draw from a short tuple.
    return options[int(rng.random() * len(options))]


def sample_offer(
    rng: np.random.Generator, typical_basket: float = DEFAULT_TYPICAL_BASKET
) -> OfferFeatures:
    """A random offer of the kinds campaigns make."""
    category = _pick(rng, SIM_CATEGORIES)
    kind = rng.random()
    min_basket = float(_pick(rng, _MIN_BASKETS))
    if kind < 0.5:
        return OfferFeatures(
            "amount", float(_pick(rng, _AMOUNTS)), category, min_basket, typical_basket
        )
    if kind < 0.8:
        return OfferFeatures(
            "percent", float(_pick(rng, _PERCENTS)), category, min_basket, typical_basket
        )
    cheap = _CHEAP[category]
    if not cheap:  # nobody gives away a bento
        return OfferFeatures(
            "amount", float(_pick(rng, _AMOUNTS)), category, min_basket, typical_basket
        )
    item = _pick(rng, cheap)
    return OfferFeatures(
        "free_item", float(item.price), category, max(min_basket, 500.0), typical_basket
    )


def sample_offers(rng: np.random.Generator, k: int) -> list[OfferFeatures]:
    """`k` random candidate offers."""
    return [sample_offer(rng) for _ in range(k)]
