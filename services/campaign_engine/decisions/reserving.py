"""From a chosen candidate to its reservation, and back (docs/architecture.md § Decisions):
what a chosen candidate asks the reservation script for, the reservations a request asked
again may already hold, and giving back what a batch that will not be stored had reserved."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import redis
import structlog

from services.campaign_engine.budget.limits import Limits, Usage
from services.campaign_engine.budget.reservation_store import (
    ReservationStore,
    ReservationsUnavailable,
    Wanted,
)
from services.campaign_engine.budget.seeding import total_ttl_s
from services.campaign_engine.decisions.candidates import Candidate, reservation_limits
from services.campaign_engine.decisions.inputs import DecisionInputs
from services.campaign_engine.decisions.record import Outcome
from shared.events import OfferRequested

log = structlog.get_logger(__name__)

REDIS_ERRORS = (ReservationsUnavailable, redis.RedisError)


def wanted_reservation(
    request_id: str,
    customer_id: str,
    chosen: Candidate,
    now: datetime,
    pacing_slack: float,
    counter_key: str | None,
    campaign_terms: dict[str, tuple[Limits, int]],
) -> Wanted:
    """The reservation a chosen candidate asks for, held under the request's id (asked
    again after a crash, the request takes it over); its campaign's limits and TTL are the
    same for the whole batch (worked out once per campaign in `campaign_terms`)."""
    campaign = chosen.campaign
    cid = campaign.campaign_id
    if cid not in campaign_terms:
        campaign_terms[cid] = (
            reservation_limits(chosen, now, pacing_slack),
            total_ttl_s(campaign, now),
        )
    limits, ttl = campaign_terms[cid]
    return Wanted(
        cid, customer_id, chosen.day, chosen.face, limits, ttl, counter_key, request_id=request_id
    )


def held_pairs(
    requests: Sequence[OfferRequested], going_on: Sequence[int], found: DecisionInputs
) -> list[tuple[str, str]]:
    """(campaign, request id) of every reservation a request of the batch may already hold:
    it was asked before and its worker died before committing (a redelivered request, a
    drop's page redone). Read with the batch's other Redis reads (decisions/redis_reads.py)."""
    return [
        (campaign.campaign_id, requests[i].request_id)
        for i in going_on
        for campaign in found.campaigns_for(requests[i].request_id, requests[i].drop_id) or []
    ]


def without_held(
    usages: dict[tuple[str, str], Usage],
    held: dict[tuple[str, str], tuple[int, int]],
    request: OfferRequested,
) -> dict[tuple[str, str], Usage]:
    """The usages a request's candidates are checked against: without what the request
    holds itself, which the reservation script lets it take over (the script checks every
    limit again, so this only decides which candidates are scored)."""
    mine = [(cid, face) for (cid, rid), (face, _) in held.items() if rid == request.request_id]
    if not mine:
        return usages
    out = dict(usages)
    for cid, face in mine:
        u = usages.get((cid, request.customer_id))
        if u is not None:
            out[(cid, request.customer_id)] = Usage(
                max(0, u.issued - 1),
                max(0, u.money - face),
                u.redeemed,
                max(0, u.customer_day - 1),
                max(0, u.customer_total - 1),
            )
    return out


def give_back(reservations: ReservationStore, outcomes: Sequence[Outcome | None]) -> None:
    """Release what a batch that will not be stored had reserved (best effort: an
    unreleased reservation under-spends, it never over-spends)."""
    taken = [o.reservation for o in outcomes if o is not None and o.reservation is not None]
    if taken:
        try:
            reservations.release_many(taken)
        except REDIS_ERRORS as exc:
            log.error("reservation_release_failed", reservations=len(taken), error=str(exc))
