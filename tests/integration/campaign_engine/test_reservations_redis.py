"""The reservation contract against real Redis (the Lua scripts)."""

from __future__ import annotations

import pytest

from services.campaign_engine.bootstrap import engine_redis
from services.campaign_engine.budget.limits import Limits
from services.campaign_engine.budget.reservations import RedisReservations, ReservationsUnavailable
from shared.redis_client import make_redis
from tests.unit.campaign_engine.budget.reservation_contract import DAY, ReservationContract, seeded


class TestRedisReservations(ReservationContract):
    @pytest.fixture
    def store(self, real_services: dict[str, str]) -> RedisReservations:
        return RedisReservations(make_redis(real_services["REDIS_URL"]))


def test_redis_down_is_reported_not_hidden(real_services: dict[str, str]) -> None:
    store = RedisReservations(engine_redis("redis://127.0.0.1:1/0"))
    with pytest.raises(ReservationsUnavailable):
        store.reserve("c", "x", DAY, 1, Limits(1), 60)
    with pytest.raises(ReservationsUnavailable):
        store.usage("c", "x", DAY)


def test_a_lost_campaign_hash_is_refused_until_reseeded(real_services: dict[str, str]) -> None:
    client = make_redis(real_services["REDIS_URL"])
    store = RedisReservations(client)
    cid = seeded(store, issued=3)
    client.delete(f"ce:{{{cid}}}:budget")  # Redis lost its data
    assert store.reserve(cid, "c1", DAY, 1, Limits(None), 60).limit == "unseeded"  # type: ignore[union-attr]
