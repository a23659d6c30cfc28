"""The live weeks demo's evaluation population (docs/learning.md § Weeks demo)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from services.campaign_engine.modeling.dataset import SimRequest, SimWorld
from shared.model.features import OfferFeatures
from shared.model.simulator import random_context
from tenin.demo.runner import OFFERS, offer_features


@dataclass(frozen=True)
class CampaignWorld(SimWorld):
    """The fixed evaluation population, asking as the demo's customers ask ("any coupons
    today?") and offered the live campaign's offers: the requests the served policy meets."""

    offers: tuple[OfferFeatures, ...] = ()

    def requests(self, n: int, seed: int, k: tuple[int, int] = (4, 4)) -> Iterator[SimRequest]:
        rng = np.random.default_rng([self.population.seed, seed, 11])
        for i in rng.integers(len(self.population), size=n):
            customer = self.population[int(i)]
            context = replace(random_context(customer, rng), intent="deal_seeking")
            yield SimRequest(customer, self.features[int(i)], context, list(self.offers))

    @classmethod
    def for_campaign(cls, n_customers: int, seed: int) -> CampaignWorld:
        world = SimWorld.create(n_customers, seed)
        offers = tuple(offer_features(o) for o in OFFERS)
        return cls(world.population, world.features, offers)
