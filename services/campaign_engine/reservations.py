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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

DAY_TTL_S = 2 * 86400
APPLIED_TTL_S = 14 * 86400
NO_LIMIT = -1

CAMPAIGN_BUDGETS = ("max_coupons", "max_discount_total", "max_redemptions")
CUSTOMER_CAPS = ("per_customer_per_day", "per_customer_total")


class ReservationsUnavailable(Exception):
    """The reservation store (Redis) cannot be reached: issue nothing."""


@dataclass(frozen=True)
class Limits:
    """A campaign's budget and caps; None means no limit."""

    max_coupons: int | None
    max_redemptions: int | None = None
    max_discount_total: int | None = None
    per_customer_per_day: int | None = None
    per_customer_total: int | None = None

    @classmethod
    def of(cls, budget: Mapping[str, Any], caps: Mapping[str, Any]) -> Limits:
        """From a campaign's budget and caps dicts."""
        return cls(**{k: budget.get(k) for k in ("max_coupons", "max_redemptions", "max_discount_total")},
                   **{k: caps.get(k) for k in CUSTOMER_CAPS})


@dataclass(frozen=True)
class Usage:
    """What a campaign has used, and what one customer has used of it."""

    issued: int
    money: int
    redeemed: int
    customer_day: int = 0
    customer_total: int = 0

    def refusal(self, limits: Limits, face: int) -> str | None:
        """The first limit one more coupon of `face` yen would break, or None."""
        checks = (
            ("max_coupons", limits.max_coupons, self.issued + 1),
            ("max_discount_total", limits.max_discount_total, self.money + face),
            ("max_redemptions", limits.max_redemptions, self.redeemed + 1),
            ("per_customer_per_day", limits.per_customer_per_day, self.customer_day + 1),
            ("per_customer_total", limits.per_customer_total, self.customer_total + 1),
        )
        return next((name for name, limit, after in checks if limit is not None and after > limit), None)


@dataclass(frozen=True)
class Reservation:
    """One coupon's worth taken from a campaign and a customer; `serial` goes into the code."""

    campaign_id: str
    customer_id: str
    day: str
    face: int
    serial: int
    issued: int
    money: int
    redeemed: int = 0

    @property
    def usage(self) -> Usage:
        """The campaign's usage right after this reservation."""
        return Usage(self.issued, self.money, self.redeemed)


@dataclass(frozen=True)
class Refused:
    """Nothing was taken: `limit` is the budget or cap that is used up (or "unseeded")."""

    limit: str


@dataclass
class Seed:
    """A campaign's usage recomputed from the database, for one day's caps."""

    issued: int
    money: int
    redeemed: int
    serial: int
    day: str
    customer_day: dict[str, int] = field(default_factory=dict)
    customer_total: dict[str, int] = field(default_factory=dict)


class ReservationStore(Protocol):
    def usage(self, campaign_id: str, customer_id: str, day: str) -> Usage | None: ...

    def seed(self, campaign_id: str, seed: Seed, total_ttl_s: int) -> bool: ...

    def reserve(
        self, campaign_id: str, customer_id: str, day: str, face: int, limits: Limits,
        total_ttl_s: int,
    ) -> Reservation | Refused: ...

    def release(self, reservation: Reservation) -> None: ...

    def reconcile(self, campaign_id: str, seed: Seed, total_ttl_s: int) -> None: ...

    def apply_usage(self, campaign_id: str, event_id: str, redeemed: int, money: int) -> Usage | None: ...


_RESERVE = """
local b = KEYS[1]
if redis.call('HEXISTS', b, 'seeded') == 0 then return {0, 'unseeded'} end
local issued = tonumber(redis.call('HGET', b, 'issued') or '0')
local money = tonumber(redis.call('HGET', b, 'money') or '0')
local redeemed = tonumber(redis.call('HGET', b, 'redeemed') or '0')
local day = tonumber(redis.call('GET', KEYS[2]) or '0')
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
local face = tonumber(ARGV[1])
local function over(limit, after)
  limit = tonumber(limit)
  return limit >= 0 and after > limit
end
if over(ARGV[2], issued + 1) then return {0, 'max_coupons'} end
if over(ARGV[3], money + face) then return {0, 'max_discount_total'} end
if over(ARGV[4], redeemed + 1) then return {0, 'max_redemptions'} end
if over(ARGV[5], day + 1) then return {0, 'per_customer_per_day'} end
if over(ARGV[6], total + 1) then return {0, 'per_customer_total'} end
issued = redis.call('HINCRBY', b, 'issued', 1)
money = redis.call('HINCRBY', b, 'money', face)
local serial = redis.call('HINCRBY', b, 'serial', 1)
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[8])
return {1, 'ok', serial, issued, money, redeemed}
"""

# Gives back what one reservation took; the serial is not reused (codes stay unique).
_RELEASE = """
local b = KEYS[1]
if redis.call('HEXISTS', b, 'seeded') == 0 then return 0 end
redis.call('HINCRBY', b, 'issued', -1)
redis.call('HINCRBY', b, 'money', -tonumber(ARGV[1]))
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('DECR', KEYS[3]) end
return 1
"""

# KEYS: budget, then n day keys, then n total keys.
# ARGV: issued, money, redeemed, serial, n, day_ttl, total_ttl, n day counts, n total counts.
_SEED = """
local b = KEYS[1]
if redis.call('HEXISTS', b, 'seeded') == 1 then return 0 end
local n = tonumber(ARGV[5])
for i = 1, n do
  redis.call('SET', KEYS[1 + i], ARGV[7 + i], 'EX', ARGV[6])
  redis.call('SET', KEYS[1 + n + i], ARGV[7 + n + i], 'EX', ARGV[7])
end
redis.call('HSET', b, 'issued', ARGV[1], 'money', ARGV[2], 'redeemed', ARGV[3],
           'serial', ARGV[4], 'seeded', 1)
return 1
"""

# Redemption and void deltas, applied once per event id.
_APPLY_USAGE = """
local b = KEYS[1]
if redis.call('HEXISTS', b, 'seeded') == 0 then return {0, 0, 0, 0} end
if redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[3]) then
  redis.call('HINCRBY', b, 'redeemed', ARGV[1])
  redis.call('HINCRBY', b, 'money', ARGV[2])
end
return {1, tonumber(redis.call('HGET', b, 'issued')), tonumber(redis.call('HGET', b, 'money')),
        tonumber(redis.call('HGET', b, 'redeemed'))}
"""


# Start-up: a Redis restored from an older snapshot is raised to at least the database's
# counts, so it can neither re-issue a serial nor under-count what is spent.
_FLOOR = """
if redis.call('HEXISTS', KEYS[1], 'seeded') == 0 then return 0 end
local names = {'issued', 'money', 'serial'}
for i = 1, 3 do
  local current = tonumber(redis.call('HGET', KEYS[1], names[i]) or '0')
  if current < tonumber(ARGV[i]) then redis.call('HSET', KEYS[1], names[i], ARGV[i]) end
end
return 1
"""


def _budget_key(cid: str) -> str:
    # The {campaign} hash tag keeps a campaign's keys in one slot (Redis Cluster-safe).
    return f"ce:{{{cid}}}:budget"


def _day_key(cid: str, day: str, customer: str) -> str:
    return f"ce:{{{cid}}}:day:{day}:{customer}"


def _total_key(cid: str, customer: str) -> str:
    return f"ce:{{{cid}}}:total:{customer}"


def _limit(value: int | None) -> int:
    return NO_LIMIT if value is None else int(value)


class RedisReservations:
    """The reservation store on Redis; every Redis failure becomes ReservationsUnavailable."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._reserve = client.register_script(_RESERVE)
        self._release = client.register_script(_RELEASE)
        self._seed = client.register_script(_SEED)
        self._apply = client.register_script(_APPLY_USAGE)
        self._floor = client.register_script(_FLOOR)

    def usage(self, campaign_id: str, customer_id: str, day: str) -> Usage | None:
        """Current usage (a plain read, for picking candidates), or None if unseeded."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hmget(_budget_key(campaign_id), "seeded", "issued", "money", "redeemed")
            pipe.get(_day_key(campaign_id, day, customer_id))
            pipe.get(_total_key(campaign_id, customer_id))
            (seeded, issued, money, redeemed), today, total = pipe.execute()
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc
        if seeded is None:
            return None
        return Usage(int(issued or 0), int(money or 0), int(redeemed or 0),
                     int(today or 0), int(total or 0))

    def seed(self, campaign_id: str, seed: Seed, total_ttl_s: int) -> bool:
        """Rebuild an unseeded campaign's usage; False if another process seeded it first."""
        customers = sorted(set(seed.customer_day) | set(seed.customer_total))
        keys = [_budget_key(campaign_id)]
        keys += [_day_key(campaign_id, seed.day, c) for c in customers]
        keys += [_total_key(campaign_id, c) for c in customers]
        args: list[Any] = [seed.issued, seed.money, seed.redeemed, seed.serial, len(customers),
                           DAY_TTL_S, total_ttl_s]
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
            self._floor(keys=[_budget_key(campaign_id)], args=[seed.issued, seed.money, seed.serial])
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc

    def reserve(
        self, campaign_id: str, customer_id: str, day: str, face: int, limits: Limits,
        total_ttl_s: int,
    ) -> Reservation | Refused:
        """Take one coupon from the budget and the customer's caps, all or nothing."""
        keys = [_budget_key(campaign_id), _day_key(campaign_id, day, customer_id),
                _total_key(campaign_id, customer_id)]
        args = [face, _limit(limits.max_coupons), _limit(limits.max_discount_total),
                _limit(limits.max_redemptions), _limit(limits.per_customer_per_day),
                _limit(limits.per_customer_total), DAY_TTL_S, max(1, total_ttl_s)]
        try:
            result = self._reserve(keys=keys, args=args)
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc
        if int(result[0]) != 1:
            return Refused(str(result[1]))
        serial, issued, money, redeemed = (int(v) for v in result[2:6])
        return Reservation(campaign_id, customer_id, day, face, serial, issued, money, redeemed)

    def release(self, reservation: Reservation) -> None:
        """Give back what a reservation took (its decision did not commit)."""
        r = reservation
        keys = [_budget_key(r.campaign_id), _day_key(r.campaign_id, r.day, r.customer_id),
                _total_key(r.campaign_id, r.customer_id)]
        try:
            self._release(keys=keys, args=[r.face])
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc

    def apply_usage(self, campaign_id: str, event_id: str, redeemed: int, money: int) -> Usage | None:
        """Add a redemption's or void's effect once per event; None if the campaign is unseeded."""
        keys = [_budget_key(campaign_id), f"ce:{{{campaign_id}}}:applied:{event_id}"]
        try:
            ok, issued, used, count = self._apply(keys=keys, args=[redeemed, money, APPLIED_TTL_S])
        except redis.RedisError as exc:
            raise ReservationsUnavailable(str(exc)) from exc
        return Usage(int(issued), int(used), int(count)) if int(ok) else None


class InMemoryReservations:
    """The in-process twin of RedisReservations (unit tests); one lock makes it atomic."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self.budgets: dict[str, dict[str, int]] = {}
        self.counters: dict[tuple[str, ...], int] = {}
        self._applied: set[tuple[str, str]] = set()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise ReservationsUnavailable("in-memory reservations switched off")

    def usage(self, campaign_id: str, customer_id: str, day: str) -> Usage | None:
        with self._lock:
            self._check()
            b = self.budgets.get(campaign_id)
            if b is None:
                return None
            return Usage(b["issued"], b["money"], b["redeemed"],
                         self.counters.get((campaign_id, day, customer_id), 0),
                         self.counters.get((campaign_id, customer_id), 0))

    def seed(self, campaign_id: str, seed: Seed, total_ttl_s: int) -> bool:
        with self._lock:
            self._check()
            if campaign_id in self.budgets:
                return False
            self.budgets[campaign_id] = {"issued": seed.issued, "money": seed.money,
                                         "redeemed": seed.redeemed, "serial": seed.serial}
            for c, n in seed.customer_day.items():
                self.counters[(campaign_id, seed.day, c)] = n
            for c, n in seed.customer_total.items():
                self.counters[(campaign_id, c)] = n
            return True

    def reconcile(self, campaign_id: str, seed: Seed, total_ttl_s: int) -> None:
        if self.seed(campaign_id, seed, total_ttl_s):
            return
        with self._lock:
            b = self.budgets[campaign_id]
            for name in ("issued", "money", "serial"):
                b[name] = max(b[name], getattr(seed, name))

    def reserve(
        self, campaign_id: str, customer_id: str, day: str, face: int, limits: Limits,
        total_ttl_s: int,
    ) -> Reservation | Refused:
        with self._lock:
            self._check()
            b = self.budgets.get(campaign_id)
            if b is None:
                return Refused("unseeded")
            day_key, total_key = (campaign_id, day, customer_id), (campaign_id, customer_id)
            used = Usage(b["issued"], b["money"], b["redeemed"],
                         self.counters.get(day_key, 0), self.counters.get(total_key, 0))
            refusal = used.refusal(limits, face)
            if refusal:
                return Refused(refusal)
            b["issued"] += 1
            b["money"] += face
            b["serial"] += 1
            self.counters[day_key] = used.customer_day + 1
            self.counters[total_key] = used.customer_total + 1
            return Reservation(campaign_id, customer_id, day, face, b["serial"], b["issued"],
                               b["money"], b["redeemed"])

    def release(self, reservation: Reservation) -> None:
        r = reservation
        with self._lock:
            self._check()
            b = self.budgets.get(r.campaign_id)
            if b is None:
                return
            b["issued"] -= 1
            b["money"] -= r.face
            for key in ((r.campaign_id, r.day, r.customer_id), (r.campaign_id, r.customer_id)):
                if key in self.counters:
                    self.counters[key] -= 1

    def apply_usage(self, campaign_id: str, event_id: str, redeemed: int, money: int) -> Usage | None:
        with self._lock:
            self._check()
            b = self.budgets.get(campaign_id)
            if b is None:
                return None
            if (campaign_id, event_id) not in self._applied:
                self._applied.add((campaign_id, event_id))
                b["redeemed"] += redeemed
                b["money"] += money
            return Usage(b["issued"], b["money"], b["redeemed"])

