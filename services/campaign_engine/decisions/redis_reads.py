"""What a decision batch reads from Redis about its customers, in one round trip
(docs/architecture.md § Decisions): each customer's features, their usage of every live
campaign, and the reservations the batch's requests already hold.

The feature store and the reservation store are two ports, but bootstrap builds both on one
Redis client: their reads then go out as one pipeline, not three round trips (in a
wall-clock profile of a loaded decision loop each of the three took 3-6% of its time).
Stores on different clients, or a test's in-memory twins, are read with their own calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from sqlalchemy.orm import Session

from services.campaign_engine.budget.limits import Usage
from services.campaign_engine.budget.redis_layout import (
    holds_from,
    queue_holds,
    queue_usages,
    usages_from,
)
from services.campaign_engine.budget.reservation_store import ReservationStore
from services.campaign_engine.budget.reservations import RedisReservations
from services.campaign_engine.budget.seeding import read_usages, usage_days
from services.campaign_engine.decisions.inputs import DecisionInputs
from services.campaign_engine.decisions.reserving import held_pairs
from services.campaign_engine.features.store import CustomerFeatureStore, FeatureSource
from shared.events import OfferRequested
from shared.model.features import CustomerFeatures


def read_batch(
    session: Session,
    features: FeatureSource,
    reservations: ReservationStore,
    requests: Sequence[OfferRequested],
    going_on: Sequence[int],
    found: DecisionInputs,
    now: datetime,
) -> tuple[
    dict[str, CustomerFeatures],
    dict[tuple[str, str], Usage],
    dict[tuple[str, str], tuple[int, int]],
]:
    """What the requests at `going_on` need from Redis: their customers' features (by
    customer id), usage of every live campaign (by campaign and customer; a campaign Redis
    does not have is seeded from the database and read again) and the reservations they
    already hold (by campaign and request id: (face, serial))."""
    customers = list(dict.fromkeys(requests[i].customer_id for i in going_on))
    reads = read_customers(
        features,
        reservations,
        customers,
        usage_days(found.campaigns, now),
        held_pairs(requests, going_on, found),
        now,
    )
    usages = read_usages(session, reservations, found.campaigns, customers, now, read=reads.usages)
    return reads.features, usages, reads.held


@dataclass(frozen=True)
class CustomerReads:
    """A batch's customers as Redis has them."""

    features: dict[str, CustomerFeatures]  # by customer id
    # (campaign, customer) → usage; None where the campaign is unseeded (seeding.read_usages)
    usages: dict[tuple[str, str], Usage | None]
    # (campaign, request id) → (face, serial) of a reservation the request already holds
    held: dict[tuple[str, str], tuple[int, int]]


def read_customers(
    features: FeatureSource,
    reservations: ReservationStore,
    customers: Sequence[str],
    campaign_days: Sequence[tuple[str, str]],
    held_pairs: Sequence[tuple[str, str]],
    now: datetime,
) -> CustomerReads:
    """Read the `customers`' features, their usage of each (campaign, campaign day) and the
    holds of each (campaign, request id) pair. Raises (redis.RedisError, or the stores'
    ReservationsUnavailable) when Redis cannot answer: the batch then issues no coupon."""
    if (
        isinstance(features, CustomerFeatureStore)
        and isinstance(reservations, RedisReservations)
        and features.client is reservations.client
        and customers
    ):
        return _pipelined(features, reservations, customers, campaign_days, held_pairs, now)
    return CustomerReads(
        dict(zip(customers, features.get_many(customers, now), strict=True)),
        reservations.usages_of(campaign_days, customers),
        reservations.held_of(held_pairs),
    )


def _pipelined(
    features: CustomerFeatureStore,
    reservations: RedisReservations,
    customers: Sequence[str],
    campaign_days: Sequence[tuple[str, str]],
    held_pairs: Sequence[tuple[str, str]],
    now: datetime,
) -> CustomerReads:
    def once() -> tuple[list[Any], int]:
        pipe = features.client.pipeline(transaction=False)
        features.queue_get_many(pipe, customers)
        usage_replies = queue_usages(pipe, campaign_days, customers)
        queue_holds(pipe, held_pairs)
        return pipe.execute(), usage_replies

    try:
        replies, usage_replies = once()
    except redis.exceptions.NoScriptError:  # Redis restarted: its scripts are gone
        features.load_scripts()
        replies, usage_replies = once()
    found, *rest = replies
    holds = rest[usage_replies:]
    return CustomerReads(
        dict(zip(customers, features.features_of(found, now), strict=True)),
        usages_from(rest[:usage_replies], campaign_days, customers),
        holds_from(holds[0], held_pairs) if holds else {},
    )
