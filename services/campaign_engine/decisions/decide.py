"""Deciding offer requests (docs/architecture.md § Decisions), a whole poll batch at once:
one lookup, one Redis read, one model call, one reservation call, one transaction.

Every request ends in exactly one stored decision and one `offer.decided` event (coupon
or not), committed together. A request already decided (or twice in the batch) is a
duplicate; one decided concurrently by another worker loses on the unique request id and
its reservation is given back. Reservations taken in Redis are given back if the
transaction fails, and Redis trouble means no coupon (`arm: none`, `redis_unavailable`),
never a coupon past a cap. A single request is a batch of one: there is one path.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import structlog
from sqlalchemy.orm import Session

from services.campaign_engine import drop_tallies, metrics
from services.campaign_engine.budget.reservation_store import Orphan, Reservation, ReservationStore
from services.campaign_engine.decisions.choose import (
    REDIS_ERRORS,
    Deciding,
    IssuanceLimit,
    choose_batch,
)
from services.campaign_engine.decisions.inputs import ActiveCampaigns, read_inputs
from services.campaign_engine.decisions.policy import PolicyConfig, Scorer, UpliftScoring
from services.campaign_engine.decisions.record import (
    Decided,
    Outcome,
    StoredDecision,
    issue_coupon,
    store_decisions,
)
from services.campaign_engine.features.store import FeatureSource
from shared.db import utcnow
from shared.events import Envelope, OfferRequested, payload_as

log = structlog.get_logger(__name__)

__all__ = ["DecidedBatch", "IssuanceLimit", "decide_batch", "decide_offer", "decide_within"]


def decide_offer(envelope: Envelope, **deps: Any) -> StoredDecision | None:
    """Decide one offer request (a batch of one); None for a duplicate. Takes decide_batch's
    keyword arguments."""
    return decide_batch([envelope], **deps)[0]


def decide_batch(
    envelopes: Sequence[Envelope], *, sessions: Callable[[], Session], **deps: Any
) -> list[StoredDecision | None]:
    """Decide a batch of offer requests in a transaction of its own; one stored decision per
    request, None for each duplicate, in order. Takes decide_within's keyword arguments.
    Raises (nothing stored, every reservation given back) when the transaction fails: the
    consumer loop then splits the batch to find the poison one."""
    requests = [payload_as(e, OfferRequested) for e in envelopes]
    decided: DecidedBatch | None = None
    with sessions() as session:
        try:
            with session.begin():
                decided = decide_within(
                    session,
                    requests,
                    event_ids=[e.event_id for e in envelopes],
                    asked_at={
                        r.request_id: e.occurred_at
                        for r, e in zip(requests, envelopes, strict=True)
                    },
                    **deps,
                )
        except BaseException:
            if decided is not None:
                decided.rolled_back()
            raise
    assert decided is not None  # the transaction committed
    decided.committed()
    return decided.results


def decide_within(
    session: Session,
    requests: Sequence[OfferRequested],
    *,
    event_ids: Sequence[uuid.UUID] | None = None,
    asked_at: Mapping[str, datetime] | None = None,
    reservations: ReservationStore,
    features: FeatureSource,
    scorer: Scorer,
    policy: PolicyConfig,
    coupon_key: bytes,
    holdout_key: bytes,
    clock: Callable[[], datetime] = utcnow,
    rng: np.random.Generator | None = None,
    campaigns: ActiveCampaigns | None = None,
    uplift_scorer: UpliftScoring | None = None,
    issuance: IssuanceLimit | None = None,
) -> DecidedBatch:
    """Decide `requests` in the caller's open transaction (the drop runner decides a page of
    followers in the page's own). `event_ids` are the consumed events' ids (a twin event in
    the batch is a duplicate) and `asked_at` when each request was made (the consumed
    event's `occurred_at`, by request id); a request made in-process has neither. The caller commits, then calls
    `committed()` on the result, or `rolled_back()` if its transaction failed. If this
    raises, it has given back what it reserved."""
    started = time.perf_counter()
    now = clock()
    deps = Deciding(
        reservations,
        features,
        scorer,
        policy,
        holdout_key,
        rng or np.random.default_rng(),
        uplift_scorer,
        issuance,
    )
    batch: list[Decided] = []
    try:
        found = read_inputs(
            session,
            [r.request_id for r in requests],
            list(dict.fromkeys(r.customer_id for r in requests)),
            now,
            campaigns or ActiveCampaigns(),
            [r.request_id for r in requests if r.drop_id is not None],
        )
        fresh = _fresh(requests, event_ids, found.decided)
        fresh_requests = [requests[i] for i in fresh]
        outcomes = choose_batch(session, fresh_requests, found, now, deps, asked_at or {})
        for i, outcome in zip(fresh, outcomes, strict=True):
            if outcome.candidate is not None and outcome.reservation is not None:
                outcome.coupon = issue_coupon(
                    outcome.candidate, outcome.reservation, coupon_key, now
                )
            batch.append(Decided(requests[i], outcome))
        stored = store_decisions(session, batch, now, model_version=scorer.model_version)
        _tally_drops(session, batch, stored, found.drop_campaigns)
    except BaseException:
        _release(reservations, [d.outcome for d in batch])
        raise
    chosen = set(fresh)
    results = [stored.get(r.request_id) if i in chosen else None for i, r in enumerate(requests)]
    return DecidedBatch(batch, stored, results, reservations, features, started)


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
        _release(self.reservations, lost)
        _release_orphans(self.reservations, self.features, self.batch, self.stored)
        _after_commit(self.batch, self.stored, self.features, time.perf_counter() - self.started)

    def rolled_back(self) -> None:
        """Nothing was stored: give back every reservation taken."""
        _release(self.reservations, [d.outcome for d in self.batch])


def _tally_drops(
    session: Session,
    batch: Sequence[Decided],
    stored: dict[str, StoredDecision],
    drop_members: Mapping[str, str | None],
) -> None:
    """Count the decisions stored for drop members in their drops' tallies."""
    decided = [
        (d.request.drop_id, s.arm, s.coupon_code is not None)
        for d in batch
        if d.request.drop_id is not None
        and d.request.request_id in drop_members
        and (s := stored.get(d.request.request_id)) is not None
    ]
    if decided:
        drop_tallies.add(session, drop_tallies.decision_deltas(decided))


def _fresh(
    requests: Sequence[OfferRequested],
    event_ids: Sequence[uuid.UUID] | None,
    decided: set[str],
) -> list[int]:
    """Indexes of the requests to decide: not decided before, first of their request id
    (and event id, for consumed events) in the batch."""
    seen_requests: set[str] = set(decided)
    seen_events: set[uuid.UUID] = set()
    out = []
    for i, request in enumerate(requests):
        event_id = event_ids[i] if event_ids else None
        if request.request_id in seen_requests or event_id in seen_events:
            log.info("offer_request_duplicate", customer_id=request.customer_id)
            continue
        seen_requests.add(request.request_id)
        if event_id is not None:
            seen_events.add(event_id)
        out.append(i)
    return out


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


def _release(reservations: ReservationStore, outcomes: Sequence[Outcome]) -> None:
    taken: list[Reservation] = [o.reservation for o in outcomes if o.reservation is not None]
    if not taken:
        return
    try:
        reservations.release_many(taken)
        metrics.RESERVATIONS_RELEASED.inc(len(taken))
    except REDIS_ERRORS as exc:
        # Fail safe: an unreleased reservation under-spends the budget, it never over-spends.
        log.error("reservation_release_failed", reservations=len(taken), error=str(exc))
