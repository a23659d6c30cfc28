"""The reservation contract against the in-memory twin."""

from __future__ import annotations

import pytest

from services.campaign_engine.budget.in_memory import InMemoryReservations
from services.campaign_engine.budget.reservation_store import ReservationsUnavailable
from tests.unit.campaign_engine.budget.reservation_contract import ReservationContract


class TestInMemoryReservations(ReservationContract):
    @pytest.fixture
    def store(self) -> InMemoryReservations:
        return InMemoryReservations()


def test_the_twin_can_play_redis_down() -> None:
    store = InMemoryReservations()
    store.down = True
    with pytest.raises(ReservationsUnavailable):
        store.usage("c", "x", "20261129")
