"""What follows a decision batch's transaction (docs/architecture.md § Decisions): once it
committed, the reservations of requests another worker decided first, and of holds the
batch's decisions did not take over, are given back, and the batch is counted and logged;
if it failed, every reservation taken is given back."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from services.campaign_engine import metrics
from services.campaign_engine.budget.reservation_store import Orphan, Reservation, ReservationStore
from services.campaign_engine.decisions.choose import REDIS_ERRORS
from services.campaign_engine.decisions.record import Decided, Outcome, StoredDecision
from services.campaign_engine.features.store import FeatureSource

log = structlog.get_logger(__name__)


@dataclass
class DecidedBatch:
    """A batch decided in an open transaction: what to do once it commits or fails."""

    batch: list[Decided]
    stored: dict[str, StoredDecision]
    results: list[StoredDecision | None]  # per request, in order; None for a duplicate
    reservations: ReservationStore
    features: FeatureSource
    started: float

    def committed(self) -> None:
        """Give back the reservations of requests decided concurrently by another worker
        (which committed first: not ours to keep) and those our requests held from an earlier
        try that their decisions did not take over; count and log the batch."""
        lost = [d.outcome for d in self.batch if d.request.request_id not in self.stored]
        release_taken(self.reservations, lost)
        _release_orphans(self.reservations, self.features, self.batch, self.stored)
        _after_commit(self.batch, self.stored, self.features, time.perf_counter() - self.started)

    def rolled_back(self) -> None:
        """Nothing was stored: give back every reservation taken."""
        release_taken(self.reservations, [d.outcome for d in self.batch])


def _after_commit(
    batch: list[Decided], stored: dict[str, StoredDecision], features: FeatureSource, seconds: float
) -> None:
    """Metrics and one log line for the batch (each decision is in the decision log;
    per decision at debug level)."""
    arms: Counter[tuple[str, str]] = Counter()
    coupons = duplicates = 0
    debug = logging.getLogger(__name__).isEnabledFor(logging.DEBUG)
    for d in batch:
        decision = stored.get(d.request.request_id)
        if decision is None:
            duplicates += 1
            continue
        outcome = d.outcome
        if outcome.coupon is not None:
            coupons += 1
            if outcome.reservation is not None and outcome.reservation.counter_key is None:
                _count_issued(features, d.request.customer_id)
        arms[(outcome.arm, outcome.reason or "")] += 1
        metrics.DECISION_SECONDS.observe(seconds)
        if debug:
            log.debug(
                "offer_decided",
                customer_id=d.request.customer_id,
                arm=outcome.arm,
                reason=outcome.reason,
                campaign_id=decision.campaign_id,
                offer_id=decision.offer_id,
            )
    metrics.COUPONS_ISSUED.inc(coupons)
    for (arm, reason), n in arms.items():
        metrics.DECISIONS.labels(arm, reason).inc(n)
    log.info(
        "offer_batch_decided",
        decided=sum(arms.values()),
        coupons=coupons,
        duplicates=duplicates,
        arms={f"{arm}/{reason}" if reason else arm: n for (arm, reason), n in arms.items()},
        seconds=round(seconds, 4),
    )


def _count_issued(features: FeatureSource, customer_id: str) -> None:
    """A feature store the reservation script cannot count in counts the coupon now."""
    try:
        features.record_coupon_issued(customer_id)
    except REDIS_ERRORS as exc:
        log.warning("feature_update_failed", customer_id=customer_id, error=str(exc))


def _release_orphans(
    reservations: ReservationStore,
    features: FeatureSource,
    batch: Sequence[Decided],
    stored: dict[str, StoredDecision],
) -> None:
    """A request asked again after a crash may have been decided otherwise than the first
    time: the reservation it held is then nobody's (its decision is committed, without it).
    Given back once (lua.RELEASE_ORPHANS); safe only now, after the commit won."""
    orphans = [
        Orphan(cid, d.request.customer_id, d.request.request_id, serial, counter)
        for d in batch
        if d.outcome.held and d.request.request_id in stored
        for cid, serial in d.outcome.held.items()
        if not _took_over(d.outcome, cid)
        for counter in (features.counter_key(d.request.customer_id),)
    ]
    if not orphans:
        return
    try:
        released = reservations.release_orphans(orphans)
        log.info("orphaned_reservations_released", released=released, held=len(orphans))
    except REDIS_ERRORS as exc:  # under-spends, never over-spends
        log.error("orphan_release_failed", reservations=len(orphans), error=str(exc))


def _took_over(outcome: Outcome, campaign_id: str) -> bool:
    r = outcome.reservation
    return r is not None and r.taken_over and r.campaign_id == campaign_id


def release_taken(reservations: ReservationStore, outcomes: Sequence[Outcome]) -> None:
    taken: list[Reservation] = [o.reservation for o in outcomes if o.reservation is not None]
    if not taken:
        return
    try:
        reservations.release_many(taken)
        metrics.RESERVATIONS_RELEASED.inc(len(taken))
    except REDIS_ERRORS as exc:
        # Fail safe: an unreleased reservation under-spends the budget, it never over-spends.
        log.error("reservation_release_failed", reservations=len(taken), error=str(exc))
