"""The reservation contract against real Redis (the Lua scripts), and what only the Redis
store does: a request's reservation held under its id, taken over when it is asked again."""

from __future__ import annotations

import pytest

from services.campaign_engine.bootstrap import engine_redis
from services.campaign_engine.budget.limits import Limits, Usage
from services.campaign_engine.budget.redis_layout import budget_key, day_key, total_key
from services.campaign_engine.budget.reservation_store import (
    Orphan,
    Refused,
    Reservation,
    ReservationsUnavailable,
    Wanted,
)
from services.campaign_engine.budget.reservations import DAY_TTL_S, RedisReservations
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


def _wanted(cid: str, request_id: str | None, face: int = 50) -> Wanted:
    return Wanted(cid, "c1", DAY, face, Limits(10, None, None, 1, 1), 60, request_id=request_id)


def test_a_request_asked_again_takes_over_the_reservation_it_holds(
    real_services: dict[str, str],
) -> None:
    store = RedisReservations(make_redis(real_services["REDIS_URL"]))
    cid = seeded(store)
    (first,) = store.reserve_many([_wanted(cid, "req-1")])
    (again,) = store.reserve_many([_wanted(cid, "req-1")])  # its first worker died
    assert isinstance(first, Reservation) and isinstance(again, Reservation)
    assert again.serial == first.serial  # the same coupon, counted once
    usage = store.usages_of([(cid, DAY)], ["c1"])[(cid, "c1")]
    assert usage is not None and (usage.issued, usage.money, usage.customer_day) == (1, 50, 1)
    (other,) = store.reserve_many([_wanted(cid, "req-2")])  # another request of c1: capped
    assert isinstance(other, Refused) and other.limit == "per_customer_per_day"


def test_a_held_reservation_is_given_back_by_its_maker_only_while_it_owns_it(
    real_services: dict[str, str],
) -> None:
    store = RedisReservations(make_redis(real_services["REDIS_URL"]))
    cid = seeded(store)
    (made,) = store.reserve_many([_wanted(cid, "req-1")])
    assert isinstance(made, Reservation) and not made.taken_over
    store.release_many([made])  # its batch failed: given back, and no longer held
    assert store.usage(cid, "c1", DAY) == Usage(0, 0, 0, 0, 0)
    assert store.held_of([(cid, "req-1")]) == {}
    (first,) = store.reserve_many([_wanted(cid, "req-1")])
    (taken_over,) = store.reserve_many([_wanted(cid, "req-1")])
    assert isinstance(first, Reservation) and isinstance(taken_over, Reservation)
    assert taken_over.taken_over and first.serial == made.serial + 1
    store.release_many([first])  # no longer its maker's: the taker may commit it
    store.release_many([taken_over])  # the maker may yet commit it: never given back
    assert store.usage(cid, "c1", DAY) == Usage(1, 50, 0, 1, 1)
    assert store.held_of([(cid, "req-1")]) == {(cid, "req-1"): (50, first.serial)}


def test_an_orphaned_reservation_is_given_back_once_and_only_if_it_is_the_one_read(
    real_services: dict[str, str],
) -> None:
    store = RedisReservations(make_redis(real_services["REDIS_URL"]))
    cid = seeded(store)
    (held,) = store.reserve_many([_wanted(cid, "req-1")])
    assert isinstance(held, Reservation)
    stale = Orphan(cid, "c1", "req-1", held.serial + 7)  # not the reservation held now
    assert store.release_orphans([stale]) == 0
    assert store.usage(cid, "c1", DAY) == Usage(1, 50, 0, 1, 1)
    orphan = Orphan(cid, "c1", "req-1", held.serial)
    assert store.release_orphans([orphan]) == 1
    assert store.usage(cid, "c1", DAY) == Usage(0, 0, 0, 0, 0)
    assert store.release_orphans([orphan]) == 0  # once
    assert store.usage(cid, "c1", DAY) == Usage(0, 0, 0, 0, 0)


def test_a_request_that_chose_another_face_reserves_anew_and_its_decision_gives_the_old_back(
    real_services: dict[str, str],
) -> None:
    store = RedisReservations(make_redis(real_services["REDIS_URL"]))
    cid = seeded(store)
    limits = Limits(10, None, None, None, None)
    first = store.reserve_many([Wanted(cid, "c1", DAY, 50, limits, 60, request_id="req-1")])[0]
    read = store.held_of([(cid, "req-1")])  # what the next batch reads before choosing
    later = store.reserve_many([Wanted(cid, "c1", DAY, 80, limits, 60, request_id="req-1")])[0]
    assert isinstance(first, Reservation) and isinstance(later, Reservation)
    assert later.serial == first.serial + 1 and not later.taken_over
    usage = store.usage(cid, "c1", DAY)  # both counted while either may still commit
    assert usage is not None and (usage.issued, usage.money) == (2, 130)
    assert store.held_of([(cid, "req-1")]) == {(cid, "req-1"): (80, later.serial)}
    # The later batch's decision committed with 80: the 50 it replaced is nobody's.
    (face, serial) = read[(cid, "req-1")]
    assert (face, serial) == (50, first.serial)
    orphan = Orphan(cid, "c1", "req-1", serial)
    assert store.release_orphans([orphan]) == 1
    assert store.release_orphans([orphan]) == 0  # once
    store.release_many([first])  # its maker failed after all: no longer its to give back
    usage = store.usage(cid, "c1", DAY)
    assert usage is not None and (usage.issued, usage.money) == (1, 80)


def test_a_batch_writes_large_counters_back_as_whole_numbers(real_services: dict[str, str]) -> None:
    # The script keeps a campaign's counters in Lua numbers and writes them back once:
    # a total such as 10**15 must stay "1000000000000050", not Lua's "1e+15".
    client = make_redis(real_services["REDIS_URL"])
    store = RedisReservations(client)
    cid = seeded(store, issued=10**12, money=10**15, serial=10**13)
    results = store.reserve_many(
        [Wanted(cid, "c1", DAY, 50, Limits(None), 60), Wanted(cid, "c2", DAY, 7, Limits(None), 60)]
    )
    assert all(isinstance(r, Reservation) for r in results)
    budget = client.hgetall(budget_key(cid))
    assert (budget["issued"], budget["money"], budget["serial"]) == (
        "1000000000002",
        "1000000000000057",
        "10000000000002",
    )
    assert client.get(day_key(cid, DAY, "c1")) == "1"
    # Each counter is written with its expiry (one SET … EX): the day's, and the total's.
    assert DAY_TTL_S - 5 < client.ttl(day_key(cid, DAY, "c1")) <= DAY_TTL_S
    assert 0 < client.ttl(total_key(cid, "c1")) <= 60
