"""The in-process twin of RedisReservations, for unit tests: one lock makes it atomic.

tests/*/campaign_engine/*reservation* run one contract suite against both, so the twin
cannot drift from the Lua scripts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from services.campaign_engine.budget.limits import Limits, Usage
from services.campaign_engine.budget.reservation_store import (
    Orphan,
    Refused,
    Reservation,
    ReservationsUnavailable,
    Seed,
    Wanted,
)


class InMemoryReservations:
    """The in-process twin of RedisReservations (unit tests); one lock makes it atomic."""

    def __init__(self) -> None:
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
            return Usage(
                b["issued"],
                b["money"],
                b["redeemed"],
                self.counters.get((campaign_id, day, customer_id), 0),
                self.counters.get((campaign_id, customer_id), 0),
            )

    def seed(self, campaign_id: str, seed: Seed, total_ttl_s: int) -> bool:
        with self._lock:
            self._check()
            if campaign_id in self.budgets:
                return False
            self.budgets[campaign_id] = {
                "issued": seed.issued,
                "money": seed.money,
                "redeemed": seed.redeemed,
                "serial": seed.serial,
            }
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
        self, campaign_id: str, customer_id: str, day: str, face: int, limits: Limits, ttl_s: int
    ) -> Reservation | Refused:
        with self._lock:
            self._check()
            b = self.budgets.get(campaign_id)
            if b is None:
                return Refused("unseeded")
            day_key, total_key = (campaign_id, day, customer_id), (campaign_id, customer_id)
            used = Usage(
                b["issued"],
                b["money"],
                b["redeemed"],
                self.counters.get(day_key, 0),
                self.counters.get(total_key, 0),
            )
            refusal = used.refusal(limits, face)
            if refusal:
                return Refused(refusal)
            b["issued"] += 1
            b["money"] += face
            b["serial"] += 1
            self.counters[day_key] = used.customer_day + 1
            self.counters[total_key] = used.customer_total + 1
            return Reservation(
                campaign_id,
                customer_id,
                day,
                face,
                b["serial"],
                b["issued"],
                b["money"],
                b["redeemed"],
            )

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

    def usages_of(
        self, campaigns: Sequence[tuple[str, str]], customers: Sequence[str]
    ) -> dict[tuple[str, str], Usage | None]:
        return {(cid, c): self.usage(cid, c, day) for cid, day in campaigns for c in customers}

    def reserve_many(self, wanted: Sequence[Wanted]) -> list[Reservation | Refused]:
        with self._lock:
            self._check()  # all or nothing on "Redis down", as one script call is
        taken = [
            self.reserve(w.campaign_id, w.customer_id, w.day, w.face, w.limits, w.ttl_s)
            for w in wanted
        ]
        # The twin keeps no feature hashes: a counter key is carried, not counted.
        return [
            replace(t, counter_key=w.counter_key) if isinstance(t, Reservation) else t
            for t, w in zip(taken, wanted, strict=True)
        ]

    def held_of(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
        """The twin holds nothing under request ids (it dies with its process)."""
        with self._lock:
            self._check()
        return {}

    def release_orphans(self, orphans: Sequence[Orphan]) -> int:
        return 0

    def release_many(self, reservations: Sequence[Reservation]) -> None:
        with self._lock:
            self._check()
        for r in reservations:
            self.release(r)

    def apply_usage(
        self, campaign_id: str, event_id: str, redeemed: int, money: int
    ) -> Usage | None:
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
