"""From a chosen candidate to its reservation, and back (docs/architecture.md § Decisions):
what a chosen candidate asks the reservation script for, and giving back what a batch that
will not be stored had reserved."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import redis
import structlog

from services.campaign_engine.budget.limits import Limits
from services.campaign_engine.budget.reservations import (
    ReservationStore,
    ReservationsUnavailable,
    Wanted,
)
from services.campaign_engine.budget.seeding import total_ttl_s
from services.campaign_engine.decisions.candidates import Candidate, reservation_limits
from services.campaign_engine.decisions.record import Outcome

log = structlog.get_logger(__name__)

REDIS_ERRORS = (ReservationsUnavailable, redis.RedisError)


def wanted_reservation(
    customer_id: str,
    chosen: Candidate,
    now: datetime,
    pacing_slack: float,
    counter_key: str | None,
    campaign_terms: dict[str, tuple[Limits, int]],
) -> Wanted:
    """The reservation a chosen candidate asks for; its campaign's limits and TTL are the
    same for the whole batch (worked out once per campaign in `campaign_terms`)."""
    campaign = chosen.campaign
    cid = campaign.campaign_id
    if cid not in campaign_terms:
        campaign_terms[cid] = (
            reservation_limits(chosen, now, pacing_slack),
            total_ttl_s(campaign, now),
        )
    limits, ttl = campaign_terms[cid]
    return Wanted(cid, customer_id, chosen.day, chosen.face, limits, ttl, counter_key)


def give_back(reservations: ReservationStore, outcomes: Sequence[Outcome | None]) -> None:
    """Release what a batch that will not be stored had reserved (best effort: an
    unreleased reservation under-spends, it never over-spends)."""
    taken = [o.reservation for o in outcomes if o is not None and o.reservation is not None]
    if taken:
        try:
            reservations.release_many(taken)
        except REDIS_ERRORS as exc:
            log.error("reservation_release_failed", reservations=len(taken), error=str(exc))
