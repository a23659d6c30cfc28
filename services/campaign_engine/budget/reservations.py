"""Atomic reservation of a campaign's budget and a customer's caps, in one Redis Lua script.

Per campaign, one hash holds what is used: coupons `issued`, `money` (yen committed: the
face value of every unredeemed coupon plus the real discount of every redeemed one),
`redeemed` (net of voids) and the coupon `serial` counter. Per customer, a counter for
the campaign's day and one for all time. The reserve script checks every limit and, only
if all pass, takes one of each and the next serial, so concurrent decisions can never
issue past a budget or cap. A reservation whose decision fails to commit is released.

Redis is a cache of the database's truth: a campaign whose hash is missing (first use,
or Redis lost its data) is "unseeded", is refused until `seed` rebuilds it from the
issued coupons and redemptions in the database, and so never restarts from zero.

A decision batch reads every customer's usage in one round trip (`usages_of`) and takes
all its chosen offers in one script call (`reserve_many`). What a store is and trades in
(the protocol, reservations, refusals) is in budget/reservation_store.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from services.campaign_engine.budget import lua
from services.campaign_engine.budget.limits import Limits, Usage
from services.campaign_engine.budget.redis_layout import (
    budget_key,
    day_key,
    held_key,
    holds_from,
    queue_holds,
    queue_usages,
    total_key,
    usages_from,
)
from services.campaign_engine.budget.reservation_store import (
    Orphan,
    Refused,
    Reservation,
    ReservationsUnavailable,
    Seed,
    Wanted,
)
from shared.ids import random_uuid

DAY_TTL_S = 2 * 86400
# How long a request's reservation stays held for it to take over if asked again (a
# redelivered request, a drop page redone after a crash: minutes in practice).
HELD_TTL_S = 86400
APPLIED_TTL_S = 14 * 86400
NO_LIMIT = -1


def _hold_keys(cid: str, request_id: str) -> list[str]:
    """A request's hold, and where a hold it replaced goes (lua.RESERVE_MANY)."""
    held = held_key(cid, request_id)
    return [held, held + ":was"]


def _batch_keys(
    cid: str, day: str, customer: str, counter: str | None, request_id: str | None
) -> list[str]:
    """The 6 keys of one item of RESERVE_MANY / RELEASE_MANY (absent ones: the budget's)."""
    budget = budget_key(cid)
    hold = _hold_keys(cid, request_id) if request_id else [budget, budget]
    return [
        budget,
        day_key(cid, day, customer),
        total_key(cid, customer),
        counter or budget,
        *hold,
    ]


def _limit(value: int | None) -> int:
    return NO_LIMIT if value is None else int(value)


def _limits(limits: Limits) -> list[int]:
    """The five limits in the order the reserve script takes them."""
    return [
        _limit(limits.max_coupons),
        _limit(limits.max_discount_total),
        _limit(limits.max_redemptions),
        _limit(limits.per_customer_per_day),
        _limit(limits.per_customer_total),
    ]


class RedisReservations:
    """The reservation store on Redis; every Redis failure becomes ReservationsUnavailable."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._reserve = client.register_script(lua.RESERVE)
        self._reserve_many = client.register_script(lua.RESERVE_MANY)
        self._release_many = client.register_script(lua.RELEASE_MANY)
        self._release_orphans = client.register_script(lua.RELEASE_ORPHANS)
        self._seed = client.register_script(lua.SEED)
        self._apply = client.register_script(lua.APPLY_USAGE)
        self._floor = client.register_script(lua.FLOOR)

    def usage(self, campaign_id: str, customer_id: str, day: str) -> Usage | None:
        """Current usage (a plain read, for picking candidates), or None if unseeded."""
        return self.usages_of([(campaign_id, day)], [customer_id])[(campaign_id, customer_id)]

    @property
    def client(self) -> redis.Redis:
        """The Redis client it works through (a decision batch pipelines its reads on it)."""
        return self._redis

    def usages_of(
        self, campaigns: Sequence[tuple[str, str]], customers: Sequence[str]
    ) -> dict[tuple[str, str], Usage | None]:
        """Usage of every (campaign, customer) pair, keyed so; one round trip for a batch.

        One HMGET per campaign and one MGET of every customer counter; None where the
        campaign is unseeded.
        """
        if not campaigns or not customers:
            return {}
        try:
            pipe = self._redis.pipeline(transaction=False)
            queue_usages(pipe, campaigns, customers)
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc
        return usages_from(replies, campaigns, customers)

    def seed(self, campaign_id: str, seed: Seed, total_ttl_s: int) -> bool:
        """Rebuild an unseeded campaign's usage; False if another process seeded it first."""
        customers = sorted(set(seed.customer_day) | set(seed.customer_total))
        keys = [budget_key(campaign_id)]
        keys += [day_key(campaign_id, seed.day, c) for c in customers]
        keys += [total_key(campaign_id, c) for c in customers]
        args: list[Any] = [
            seed.issued,
            seed.money,
            seed.redeemed,
            seed.serial,
            len(customers),
            DAY_TTL_S,
            total_ttl_s,
        ]
        args += [seed.customer_day.get(c, 0) for c in customers]
        args += [seed.customer_total.get(c, 0) for c in customers]
        try:
            return bool(self._seed(keys=keys, args=args))
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc

    def reconcile(self, campaign_id: str, seed: Seed, total_ttl_s: int) -> None:
        """Seed the campaign, or raise its counters to at least the database's."""
        if self.seed(campaign_id, seed, total_ttl_s):
            return
        try:
            self._floor(keys=[budget_key(campaign_id)], args=[seed.issued, seed.money, seed.serial])
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc

    def reserve(
        self, campaign_id: str, customer_id: str, day: str, face: int, limits: Limits, ttl_s: int
    ) -> Reservation | Refused:
        """Take one coupon from the budget and the customer's caps, all or nothing.

        `ttl_s` is how long the customer's all-time counter lives (seeding.total_ttl_s).
        """
        keys = [
            budget_key(campaign_id),
            day_key(campaign_id, day, customer_id),
            total_key(campaign_id, customer_id),
        ]
        args = [face, *_limits(limits), DAY_TTL_S, max(1, ttl_s)]
        try:
            result = self._reserve(keys=keys, args=args)
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc
        if int(result[0]) != 1:
            return Refused(str(result[1]))
        serial, issued, money, redeemed = (int(v) for v in result[2:6])
        return Reservation(campaign_id, customer_id, day, face, serial, issued, money, redeemed)

    def reserve_many(self, wanted: Sequence[Wanted]) -> list[Reservation | Refused]:
        """reserve() for each of `wanted`, in order, in one atomic script call; a request
        that already holds a reservation of the same campaign, face and day takes it over."""
        if not wanted:
            return []
        owner = random_uuid().hex
        keys: list[str] = []
        args: list[Any] = [DAY_TTL_S, owner, HELD_TTL_S]
        for w in wanted:
            keys += _batch_keys(w.campaign_id, w.day, w.customer_id, w.counter_key, w.request_id)
            args += [w.face, *_limits(w.limits), max(1, w.ttl_s)]
            args += [1 if w.counter_key else 0, 1 if w.request_id else 0]
        try:
            results = self._reserve_many(keys=keys, args=args)
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc
        out: list[Reservation | Refused] = []
        for w, result in zip(wanted, results, strict=True):
            if int(result[0]) != 1:
                out.append(Refused(str(result[1])))
                continue
            serial, issued, money, redeemed = (int(v) for v in result[2:6])
            out.append(
                Reservation(
                    w.campaign_id,
                    w.customer_id,
                    w.day,
                    w.face,
                    serial,
                    issued,
                    money,
                    redeemed,
                    counter_key=w.counter_key,
                    request_id=w.request_id,
                    owner=owner if w.request_id else None,
                    taken_over=str(result[1]) == "held",
                )
            )
        return out

    def held_of(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
        """(face, serial) of the reservation each (campaign, request id) holds, where it holds
        one (one round trip): a request asked again is checked against its limits without
        it, and its decision gives it back if it does not take it over."""
        if not pairs:
            return {}
        try:
            pipe = self._redis.pipeline(transaction=False)
            queue_holds(pipe, pairs)
            (found,) = pipe.execute()
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc
        return holds_from(found, pairs)

    def release_orphans(self, orphans: Sequence[Orphan]) -> int:
        """Give back reservations held by requests whose decisions committed without them,
        each once and only if it is still the one read (lua.RELEASE_ORPHANS); returns how
        many were given back."""
        if not orphans:
            return 0
        keys: list[str] = []
        args: list[Any] = []
        for o in orphans:
            budget = budget_key(o.campaign_id)
            total = total_key(o.campaign_id, o.customer_id)
            hold = _hold_keys(o.campaign_id, o.request_id)
            keys += [budget, total, o.counter_key or budget, *hold]
            args.append(o.serial)
        try:
            return int(self._release_orphans(keys=keys, args=args))
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc

    def release_many(self, reservations: Sequence[Reservation]) -> None:
        """Give back what each reservation took (its decision did not commit), in one script
        call; a held one only while this batch still owns it, a taken-over one never."""
        mine = [r for r in reservations if not r.taken_over]
        if not mine:
            return
        keys: list[str] = []
        args: list[Any] = []
        for r in mine:
            keys += _batch_keys(r.campaign_id, r.day, r.customer_id, r.counter_key, r.request_id)
            args += [r.face, 1 if r.counter_key else 0, r.owner or ""]
        try:
            self._release_many(keys=keys, args=args)
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc

    def release(self, reservation: Reservation) -> None:
        """release_many of one reservation."""
        self.release_many([reservation])

    def apply_usage(
        self, campaign_id: str, event_id: str, redeemed: int, money: int
    ) -> Usage | None:
        """Add a redemption's or void's effect once per event; None if the campaign is unseeded."""
        keys = [budget_key(campaign_id), f"ce:{{{campaign_id}}}:applied:{event_id}"]
        try:
            ok, issued, used, count = self._apply(keys=keys, args=[redeemed, money, APPLIED_TTL_S])
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc
        return Usage(int(issued), int(used), int(count)) if int(ok) else None
