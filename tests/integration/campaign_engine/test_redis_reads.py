"""A decision batch's Redis reads (features, usages, holds) in one pipeline, against real
Redis: the same answers as the stores' own calls, after Redis lost its scripts too, and a
Redis that cannot answer is an error, never an empty read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import redis

from services.campaign_engine.budget.limits import Limits
from services.campaign_engine.budget.reservation_store import Reservation, Wanted
from services.campaign_engine.budget.reservations import RedisReservations
from services.campaign_engine.decisions import redis_reads
from services.campaign_engine.decisions.redis_reads import CustomerReads, read_customers
from services.campaign_engine.features.store import _READ_MANY, CustomerFeatureStore
from shared.redis_client import make_redis
from tests.unit.campaign_engine.budget.reservation_contract import DAY, seeded

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
def client(real_services: dict[str, str]) -> redis.Redis:
    return make_redis(real_services["REDIS_URL"])


def _scene(client: redis.Redis) -> tuple[CustomerFeatureStore, RedisReservations, dict]:
    """Two customers with history, one unknown; a seeded campaign where c1 holds a
    reservation under req-1; a campaign never seeded."""
    features = CustomerFeatureStore(client, prefix=f"test:cf:{uuid.uuid4()}:")
    reservations = RedisReservations(client)
    features.load_aggregates("c1", {"sale_count": 4, "sale_total": 3200.0, "issued": 2})
    features.load_aggregates("c2", {"sale_count": 1, "sale_total": 500.0})
    live = seeded(reservations, issued=3, money=150)
    taken = reservations.reserve_many(
        [Wanted(live, "c1", DAY, 50, Limits(10, None, None, 2, 5), 60, request_id="req-1")]
    )
    assert isinstance(taken[0], Reservation) and taken[0].serial == 1
    asked = {
        "customers": ["c1", "c2", "c3"],
        "campaign_days": [(live, DAY), (f"cmp-never-{uuid.uuid4()}", DAY)],
        "held_pairs": [(live, "req-1"), (live, "req-2")],
    }
    return features, reservations, asked


def _separately(
    features: CustomerFeatureStore, reservations: RedisReservations, asked: dict
) -> CustomerReads:
    return CustomerReads(
        dict(zip(asked["customers"], features.get_many(asked["customers"], NOW), strict=True)),
        reservations.usages_of(asked["campaign_days"], asked["customers"]),
        reservations.held_of(asked["held_pairs"]),
    )


def test_one_pipeline_reads_what_the_three_calls_read(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    features, reservations, asked = _scene(client)
    pipelines: list[int] = []
    real = redis_reads._pipelined

    def counted(*args: object) -> CustomerReads:
        pipelines.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(redis_reads, "_pipelined", counted)
    read = read_customers(features, reservations, **asked, now=NOW)
    assert pipelines == [1]  # the stores share the client: one pipeline
    assert read == _separately(features, reservations, asked)
    live, never = (cid for cid, _ in asked["campaign_days"])
    assert read.held == {(live, "req-1"): (50, 1)}  # its face and serial
    usage = read.usages[(live, "c1")]
    assert usage is not None and (usage.issued, usage.money, usage.customer_day) == (4, 200, 1)
    assert read.usages[(never, "c1")] is None  # unseeded: seeding.read_usages seeds it
    assert read.features["c1"] != read.features["c3"]  # c3 is unknown: the defaults


def test_a_batch_without_holds_or_campaigns_reads_features_only(client: redis.Redis) -> None:
    features, reservations, asked = _scene(client)
    read = read_customers(features, reservations, asked["customers"], [], [], NOW)
    assert read.usages == {} and read.held == {}
    assert read.features == _separately(features, reservations, asked).features


def test_a_redis_that_lost_its_scripts_is_given_them_again(client: redis.Redis) -> None:
    features, reservations, asked = _scene(client)
    # A script text Redis has never seen stands for one it lost (a restart): SCRIPT FLUSH
    # would pull the scripts from under every other test using this Redis.
    features._read_many = client.register_script(_READ_MANY + f"\n-- {uuid.uuid4()}")
    assert client.script_exists(features._read_many.sha) == [False]
    read = read_customers(features, reservations, **asked, now=NOW)
    assert read == _separately(features, reservations, asked)
    assert client.script_exists(features._read_many.sha) == [True]


def test_stores_on_different_clients_are_read_with_their_own_calls(
    client: redis.Redis, real_services: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    features, _, asked = _scene(client)
    reservations = RedisReservations(make_redis(real_services["REDIS_URL"]))
    monkeypatch.setattr(redis_reads, "_pipelined", lambda *a: pytest.fail("pipelined"))
    read = read_customers(features, reservations, **asked, now=NOW)
    assert read == _separately(features, reservations, asked)


def test_a_redis_that_cannot_answer_raises() -> None:
    down = make_redis("redis://127.0.0.1:1/0")
    features = CustomerFeatureStore(down)
    with pytest.raises(redis.RedisError):
        read_customers(features, RedisReservations(down), ["c1"], [("x", DAY)], [], NOW)
