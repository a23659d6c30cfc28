"""Simulated convenience-store shoppers for training, tests and the demo.

The hidden traits and the response truth live only in this package: tenin's own code
never imports it at serving time; tests and benchmarks use it to score what tenin learns.
"""

from shared.model.simulator.catalog import ITEMS, SIM_CATEGORIES, Item, sample_offer, sample_offers
from shared.model.simulator.history import observed_features, simulate_past_sales
from shared.model.simulator.population import (
    DEFAULT_START,
    JST,
    STORES,
    Customer,
    Population,
    ResponseType,
    Traits,
)
from shared.model.simulator.shopping import ShoppingSimulator, Visit, random_context
from shared.model.simulator.truth import (
    DEFAULT_WINDOW_DAYS,
    MARGIN_RATE,
    Basket,
    WindowOutcome,
    basket,
    draw_window_outcome,
    expected_basket,
    incremental_profit,
    p_redeem,
    p_redeem_many,
)

__all__ = [
    "DEFAULT_START",
    "DEFAULT_WINDOW_DAYS",
    "ITEMS",
    "JST",
    "MARGIN_RATE",
    "SIM_CATEGORIES",
    "STORES",
    "Basket",
    "Customer",
    "Item",
    "Population",
    "ResponseType",
    "ShoppingSimulator",
    "Traits",
    "Visit",
    "WindowOutcome",
    "basket",
    "draw_window_outcome",
    "expected_basket",
    "incremental_profit",
    "observed_features",
    "p_redeem",
    "p_redeem_many",
    "random_context",
    "sample_offer",
    "sample_offers",
    "simulate_past_sales",
]
