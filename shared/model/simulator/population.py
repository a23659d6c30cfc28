"""A seeded population of convenience-store customers with hidden traits (the simulator's truth)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

import numpy as np

from shared.events import Language
from shared.model.simulator.catalog import SIM_CATEGORIES

# Who writes in which of the clerk's languages (shared.events.LANGUAGES).
LANGUAGE_MIX: dict[Language, float] = {"ja": 0.85, "en": 0.10, "id": 0.05}

JST = timezone(timedelta(hours=9))
DEFAULT_START = datetime(2026, 11, 2, 0, 0, tzinfo=JST)  # a Monday
STORES: tuple[str, ...] = ("S001", "S002", "S003", "S004")


class ResponseType(StrEnum):
    """How a customer reacts to a coupon, in the terms of the uplift literature."""

    PERSUADABLE = "persuadable"  # buys more only with a coupon
    SURE_THING = "sure_thing"  # buys anyway; the coupon only costs the discount
    LOST_CAUSE = "lost_cause"  # rarely buys, coupon or not
    DO_NOT_DISTURB = "do_not_disturb"  # being contacted puts them off


TYPE_SHARE: dict[ResponseType, float] = {
    ResponseType.PERSUADABLE: 0.30,
    ResponseType.SURE_THING: 0.20,
    ResponseType.LOST_CAUSE: 0.35,
    ResponseType.DO_NOT_DISTURB: 0.15,
}
# Median visits per day, share who linked their loyalty card, mean price sensitivity.
_VISIT_RATE = {"persuadable": 0.18, "sure_thing": 0.55, "lost_cause": 0.12, "do_not_disturb": 0.30}
_LINKED = {"persuadable": 0.75, "sure_thing": 0.85, "lost_cause": 0.60, "do_not_disturb": 0.70}
_PRICE_SENS = {"persuadable": 1.3, "sure_thing": 0.7, "lost_cause": 0.8, "do_not_disturb": 0.8}
# Peaks of the day a habit can centre on: breakfast, lunch, evening, late night.
_PEAKS = (7.5, 12.0, 18.5, 22.0)


@dataclass(frozen=True)
class Traits:
    """Hidden: what drives the customer's behaviour; tenin never sees these."""

    response_type: ResponseType
    visit_rate: float  # natural visits per day
    basket_mean: float  # yen
    tastes: np.ndarray  # probability over SIM_CATEGORIES, sums to 1
    price_sensitivity: float  # around 1; scales the pull of a deep discount
    hour_profile: np.ndarray  # probability over the 24 hours of the day
    weekend_factor: float  # visit rate multiplier on Saturday and Sunday
    home_store: str


@dataclass(frozen=True)
class Customer:
    """A simulated customer: public identities plus hidden traits."""

    index: int
    customer_id: str  # pseudonymous id tenin uses
    member_id: str  # loyalty card, as the POS sends it
    user_id: str  # LINE-style messaging user id
    language: str
    linked: bool  # loyalty card linked to the messaging account
    followed_days_ago: float  # before the population's start time
    traits: Traits


class Population:
    """A fixed set of customers generated from a seed; the same seed gives the same people."""

    def __init__(self, customers: list[Customer], start: datetime, seed: int) -> None:
        self.customers = customers
        self.start = start
        self.seed = seed
        self._by_id = {c.customer_id: c for c in customers}

    @classmethod
    def generate(cls, n: int, seed: int, start: datetime = DEFAULT_START) -> Population:
        """Draw `n` customers; `start` is the moment the simulation (and history) is anchored at."""
        return cls(_draw_customers(n, np.random.default_rng(seed)), start, seed)

    def __len__(self) -> int:
        return len(self.customers)

    def __iter__(self) -> Iterator[Customer]:
        return iter(self.customers)

    def __getitem__(self, index: int) -> Customer:
        return self.customers[index]

    def by_id(self, customer_id: str) -> Customer:
        """The customer with this pseudonymous id."""
        return self._by_id[customer_id]


def _draw_customers(n: int, rng: np.random.Generator) -> list[Customer]:
    """Vectorised draws: one numpy call per trait, not per customer."""
    types = list(TYPE_SHARE)
    kinds = [types[k] for k in rng.choice(len(types), size=n, p=list(TYPE_SHARE.values()))]
    rate = np.clip([_VISIT_RATE[k] for k in kinds] * rng.lognormal(0.0, 0.5, n), 0.02, 1.5)
    sure = np.array([k == ResponseType.SURE_THING for k in kinds])
    basket = np.clip(rng.normal(760.0 + 60.0 * sure, 170.0), 350.0, 1600.0)
    tastes = rng.dirichlet(np.full(len(SIM_CATEGORIES), 0.8), size=n)
    sens = rng.gamma(4.0, 1.0, n) * [_PRICE_SENS[k] / 4.0 for k in kinds]
    # Hour habits: one or two peaks (breakfast, lunch, evening, late night) over a thin floor.
    peaks = np.argsort(rng.random((n, len(_PEAKS))), axis=1)[:, :2]
    centres = np.asarray(_PEAKS)[peaks] + rng.normal(0.0, 0.7, (n, 2))
    dist = np.abs(np.arange(24)[None, None, :] + 0.5 - centres[:, :, None]) % 24
    bumps = np.exp(-0.5 * (np.minimum(dist, 24 - dist) / 1.3) ** 2)
    bumps /= bumps.sum(axis=2, keepdims=True)
    two = rng.random(n) < 0.5
    weights = np.stack([np.where(two, 0.5, 1.0), np.where(two, 0.5, 0.0)], axis=1)
    profile = 0.05 / 24 + 0.95 * (weights[:, :, None] * bumps).sum(axis=1)
    profile /= profile.sum(axis=1, keepdims=True)
    weekend = np.exp(rng.normal(0.0, 0.25, n))
    store = rng.integers(len(STORES), size=n)
    languages = list(LANGUAGE_MIX)
    lang = rng.choice(len(languages), size=n, p=list(LANGUAGE_MIX.values()))
    linked = rng.random(n) < [_LINKED[k] for k in kinds]
    followed = rng.uniform(1.0, 400.0, n)
    ids = rng.bytes(32 * n)
    return [
        Customer(
            index=i,
            customer_id=str(uuid.UUID(bytes=ids[32 * i : 32 * i + 16], version=4)),
            member_id=f"M{i + 1:06d}",
            user_id="U" + ids[32 * i + 16 : 32 * i + 32].hex(),
            language=languages[lang[i]],
            linked=bool(linked[i]),
            followed_days_ago=float(followed[i]),
            traits=Traits(
                response_type=kinds[i],
                visit_rate=float(rate[i]),
                basket_mean=float(basket[i]),
                tastes=tastes[i],
                price_sensitivity=float(sens[i]),
                hour_profile=profile[i],
                weekend_factor=float(weekend[i]),
                home_store=STORES[store[i]],
            ),
        )
        for i in range(n)
    ]
