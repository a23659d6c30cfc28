"""One contract for the reservation store, run against Redis (integration) and the twin (unit)."""

from __future__ import annotations

import threading
import uuid

import pytest

from services.campaign_engine.budget.limits import Limits
from services.campaign_engine.budget.reservation_store import (
    Refused,
    Reservation,
    ReservationStore,
    Seed,
    Wanted,
)

DAY = "20261129"
TTL = 86400


def seeded(store: ReservationStore, **counts: int) -> str:
    campaign = f"cmp-{uuid.uuid4()}"
    seed = Seed(
        issued=counts.get("issued", 0),
        money=counts.get("money", 0),
        redeemed=counts.get("redeemed", 0),
        serial=counts.get("serial", 0),
        day=DAY,
    )
    assert store.seed(campaign, seed, TTL)
    return campaign


class ReservationContract:
    """Subclasses provide a `store` fixture."""

    def test_an_unseeded_campaign_is_refused_and_reads_as_none(
        self, store: ReservationStore
    ) -> None:
        assert store.usage("cmp-never-seeded", "c1", DAY) is None
        assert store.reserve("cmp-never-seeded", "c1", DAY, 10, Limits(10), TTL) == Refused(
            "unseeded"
        )

    def test_reserve_takes_one_of_everything_and_the_next_serial(
        self, store: ReservationStore
    ) -> None:
        cid = seeded(store, issued=3, money=300, serial=41)
        taken = store.reserve(cid, "c1", DAY, 50, Limits(10, None, 1000, 2, 5), TTL)
        assert isinstance(taken, Reservation)
        assert (taken.serial, taken.issued, taken.money) == (42, 4, 350)
        usage = store.usage(cid, "c1", DAY)
        assert usage is not None
        assert (usage.issued, usage.money, usage.customer_day, usage.customer_total) == (
            4,
            350,
            1,
            1,
        )

    def test_a_batch_over_two_campaigns_takes_in_order_and_the_next_batch_goes_on(
        self, store: ReservationStore
    ) -> None:
        a, b = seeded(store, issued=1, money=10, serial=7), seeded(store, serial=100)
        three, once = Limits(max_coupons=3), Limits(None, per_customer_per_day=1)
        first = store.reserve_many(
            [
                Wanted(a, "c1", DAY, 50, three, TTL),
                Wanted(b, "c1", DAY, 20, once, TTL),
                Wanted(a, "c2", DAY, 50, three, TTL),
                Wanted(b, "c1", DAY, 20, once, TTL),  # c1's second of the day in this batch
                Wanted(a, "c3", DAY, 50, three, TTL),  # a's fourth coupon: over max_coupons
                Wanted(b, "c2", DAY, 20, once, TTL),
            ]
        )
        assert [(r.serial, r.issued, r.money) for r in first if isinstance(r, Reservation)] == [
            (8, 2, 60),
            (101, 1, 20),
            (9, 3, 110),
            (102, 2, 40),
        ]
        refused = [r for r in first if isinstance(r, Refused)]
        assert refused == [Refused("per_customer_per_day"), Refused("max_coupons")]
        assert (first[3], first[4]) == tuple(refused)
        (more,) = store.reserve_many([Wanted(b, "c3", DAY, 20, once, TTL)])
        assert isinstance(more, Reservation) and (more.serial, more.issued) == (103, 3)
        usage_a, usage_b = store.usage(a, "c1", DAY), store.usage(b, "c3", DAY)
        assert usage_a is not None and usage_b is not None
        assert (usage_a.issued, usage_a.money, usage_a.customer_day) == (3, 110, 1)
        assert (usage_b.issued, usage_b.money, usage_b.customer_day) == (3, 60, 1)

    @pytest.mark.parametrize(
        ("limits", "face", "refusal"),
        [
            (Limits(max_coupons=3), 10, "max_coupons"),
            (Limits(None, None, max_discount_total=305), 10, "max_discount_total"),
            (Limits(None, max_redemptions=1), 10, "max_redemptions"),
            (Limits(None, per_customer_per_day=1), 10, "per_customer_per_day"),
            (Limits(None, per_customer_total=1), 10, "per_customer_total"),
        ],
    )
    def test_each_limit_refuses_and_takes_nothing(
        self, store: ReservationStore, limits: Limits, face: int, refusal: str
    ) -> None:
        cid = seeded(store, issued=2, money=300, redeemed=1)
        # One coupon for c1 first, under no limits, so the per-customer caps are at 1.
        assert isinstance(store.reserve(cid, "c1", DAY, 0, Limits(None), TTL), Reservation)
        before = store.usage(cid, "c1", DAY)
        assert store.reserve(cid, "c1", DAY, face, limits, TTL) == Refused(refusal)
        assert store.usage(cid, "c1", DAY) == before

    def test_release_gives_back_all_but_the_serial(self, store: ReservationStore) -> None:
        cid = seeded(store)
        first = store.reserve(cid, "c1", DAY, 70, Limits(1, None, None, 1, 1), TTL)
        assert isinstance(first, Reservation)
        store.release(first)
        usage = store.usage(cid, "c1", DAY)
        assert usage is not None
        assert (usage.issued, usage.money, usage.customer_day, usage.customer_total) == (0, 0, 0, 0)
        again = store.reserve(cid, "c1", DAY, 70, Limits(1, None, None, 1, 1), TTL)
        assert isinstance(again, Reservation) and again.serial == first.serial + 1

    def test_seed_is_first_writer_wins(self, store: ReservationStore) -> None:
        cid = seeded(store, issued=5)
        assert not store.seed(cid, Seed(issued=99, money=0, redeemed=0, serial=0, day=DAY), TTL)
        usage = store.usage(cid, "c1", DAY)
        assert usage is not None and usage.issued == 5

    def test_seed_restores_customer_counters(self, store: ReservationStore) -> None:
        cid = f"cmp-{uuid.uuid4()}"
        store.seed(
            cid,
            Seed(
                issued=2,
                money=0,
                redeemed=0,
                serial=2,
                day=DAY,
                customer_day={"c1": 1},
                customer_total={"c1": 2},
            ),
            TTL,
        )
        assert store.reserve(
            cid, "c1", DAY, 0, Limits(None, per_customer_per_day=1), TTL
        ) == Refused("per_customer_per_day")
        assert store.reserve(cid, "c1", DAY, 0, Limits(None, per_customer_total=2), TTL) == Refused(
            "per_customer_total"
        )
        assert isinstance(
            store.reserve(cid, "c1", "20261130", 0, Limits(None, per_customer_per_day=1), TTL),
            Reservation,
        )

    def test_reconcile_raises_counters_to_the_database(self, store: ReservationStore) -> None:
        cid = seeded(store, issued=5, money=100, serial=5)
        store.reconcile(cid, Seed(issued=7, money=50, redeemed=0, serial=9, day=DAY), TTL)
        taken = store.reserve(cid, "c1", DAY, 0, Limits(None), TTL)
        assert isinstance(taken, Reservation)
        assert (taken.issued, taken.money, taken.serial) == (8, 100, 10)

    def test_usage_deltas_apply_once_per_event(self, store: ReservationStore) -> None:
        cid = seeded(store, issued=4, money=400)
        first = store.apply_usage(cid, "ev-1", 1, -20)
        again = store.apply_usage(cid, "ev-1", 1, -20)
        assert first is not None and (first.redeemed, first.money) == (1, 380)
        assert again == first
        assert store.apply_usage("cmp-never-seeded", "ev-2", 1, 0) is None

    def test_concurrent_reservations_never_exceed_the_budget(self, store: ReservationStore) -> None:
        cid = seeded(store)
        results: list[object] = []
        barrier = threading.Barrier(40)

        def grab(i: int) -> None:
            barrier.wait()
            for _ in range(5):
                results.append(store.reserve(cid, f"c{i}", DAY, 10, Limits(50, None, 450), TTL))

        threads = [threading.Thread(target=grab, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        taken = [r for r in results if isinstance(r, Reservation)]
        assert len(taken) == 45  # the money budget (450 / 10) binds before max_coupons
        assert sorted(r.serial for r in taken) == list(range(1, 46))
