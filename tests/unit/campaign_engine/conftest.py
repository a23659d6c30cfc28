"""Unit fixtures: a throwaway in-memory SQLite database and the engine's fakes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from migrations.metadata import target_metadata
from services.campaign_engine.bootstrap import holdout_key
from services.campaign_engine.budget.in_memory import InMemoryReservations
from services.campaign_engine.decisions.decide import decide_offer
from services.campaign_engine.decisions.inputs import ActiveCampaigns
from services.campaign_engine.decisions.policy import PolicyConfig
from shared.coupons import coupon_key
from shared.db import make_engine, make_session_factory
from shared.events import Envelope
from tests.unit.campaign_engine.fakes import NOW, ConstantScorer, FakeFeatures, FakeMarkers

SECRET = "unit-test-secret"


@pytest.fixture
def sessions() -> Iterator[Callable[[], Session]]:
    engine = make_engine("sqlite://")
    target_metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def reservations() -> InMemoryReservations:
    return InMemoryReservations()


@pytest.fixture
def features() -> FakeFeatures:
    return FakeFeatures()


@pytest.fixture
def markers() -> FakeMarkers:
    return FakeMarkers()


@pytest.fixture
def scorer() -> ConstantScorer:
    return ConstantScorer()


def wired_decider(
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
    features: FakeFeatures,
    scorer: ConstantScorer,
    **extra: Any,
) -> Callable[[Envelope], Any]:
    """decide_offer wired to the fakes, a fixed clock and a greedy policy (`extra`: more of
    its keyword arguments, e.g. `issuance=`)."""
    campaigns = ActiveCampaigns()  # shared between decisions, as in a worker

    def run(envelope: Envelope) -> Any:
        return decide_offer(
            envelope,
            sessions=sessions,
            reservations=reservations,
            features=features,
            scorer=scorer,
            policy=PolicyConfig(mode="greedy"),
            coupon_key=coupon_key(SECRET),
            holdout_key=holdout_key(SECRET),
            clock=lambda: NOW,
            campaigns=campaigns,
            **extra,
        )

    return run


@pytest.fixture
def decide(
    sessions: Callable[[], Session],
    reservations: InMemoryReservations,
    features: FakeFeatures,
    scorer: ConstantScorer,
) -> Callable[[Envelope], Any]:
    """decide_offer wired to the fakes, a fixed clock and a greedy policy."""
    return wired_decider(sessions, reservations, features, scorer)
