"""What a reservation store is and what it trades in (docs/architecture.md § Decisions): the
store's protocol, a reservation taken or refused, one wanted by a decision batch, one held
by a request whose decision did without it, and a campaign's usage rebuilt from the
database. RedisReservations (budget/reservations.py) is the store; InMemoryReservations
(budget/in_memory.py) is its twin in unit tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from services.campaign_engine.budget.limits import Limits, Usage


class ReservationsUnavailable(Exception):
    """The reservation store (Redis) cannot be reached: issue nothing."""


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
    # The customer-feature hash whose `issued` count the reservation also took (None: none).
    counter_key: str | None = None
    # Held under its request id (RESERVE_MANY): the request, and the batch that may give it back.
    request_id: str | None = None
    owner: str | None = None
    # Taken over from an earlier try of the same request: never given back by this batch
    # (the earlier try may yet commit it; lua.RESERVE_MANY).
    taken_over: bool = False

    @property
    def usage(self) -> Usage:
        """The campaign's usage right after this reservation."""
        return Usage(self.issued, self.money, self.redeemed)


@dataclass(frozen=True)
class Refused:
    """Nothing was taken: `limit` is the budget or cap that is used up (or "unseeded")."""

    limit: str


@dataclass(frozen=True)
class Wanted:
    """One coupon a decision batch wants to reserve (RESERVE_MANY takes them in order)."""

    campaign_id: str
    customer_id: str
    day: str
    face: int
    limits: Limits
    ttl_s: int
    counter_key: str | None = None
    # The request it is for: asked again, the request takes over the reservation it holds.
    request_id: str | None = None


@dataclass(frozen=True)
class Orphan:
    """A reservation a request held that its committed decision did not use."""

    campaign_id: str
    customer_id: str
    request_id: str
    serial: int
    counter_key: str | None = None


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
    """Where reservations are taken: RedisReservations, or InMemoryReservations in unit tests."""

    def usage(self, campaign_id: str, customer_id: str, day: str) -> Usage | None: ...

    def seed(self, campaign_id: str, seed: Seed, total_ttl_s: int) -> bool: ...

    def reserve(
        self, campaign_id: str, customer_id: str, day: str, face: int, limits: Limits, ttl_s: int
    ) -> Reservation | Refused: ...

    def release(self, reservation: Reservation) -> None: ...

    def usages_of(
        self, campaigns: Sequence[tuple[str, str]], customers: Sequence[str]
    ) -> dict[tuple[str, str], Usage | None]: ...

    def reserve_many(self, wanted: Sequence[Wanted]) -> list[Reservation | Refused]: ...

    def held_of(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, int]]: ...

    def release_orphans(self, orphans: Sequence[Orphan]) -> int: ...

    def release_many(self, reservations: Sequence[Reservation]) -> None: ...

    def reconcile(self, campaign_id: str, seed: Seed, total_ttl_s: int) -> None: ...

    def apply_usage(
        self, campaign_id: str, event_id: str, redeemed: int, money: int
    ) -> Usage | None: ...
