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

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import structlog
from sqlalchemy.orm import Session

from services.campaign_engine import drop_tallies
from services.campaign_engine.budget.reservation_store import ReservationStore
from services.campaign_engine.decisions.after_commit import DecidedBatch, release_taken
from services.campaign_engine.decisions.choose import (
    Deciding,
    IssuanceLimit,
    choose_batch,
)
from services.campaign_engine.decisions.inputs import ActiveCampaigns, read_inputs
from services.campaign_engine.decisions.policy import PolicyConfig, Scorer, UpliftScoring
from services.campaign_engine.decisions.record import (
    Decided,
    StoredDecision,
    batch_rows,
    sign_coupons,
    write_rows,
)
from services.campaign_engine.features.store import FeatureSource
from shared.db import utcnow
from shared.events import Envelope, OfferRequested, payload_as

log = structlog.get_logger(__name__)

__all__ = [
    "ChosenBatch",
    "DecidedBatch",
    "IssuanceLimit",
    "choose_within",
    "decide_batch",
    "decide_offer",
    "decide_within",
    "prepare_batch",
]


def decide_offer(envelope: Envelope, **deps: Any) -> StoredDecision | None:
    """Decide one offer request (a batch of one); None for a duplicate. Takes decide_batch's
    keyword arguments."""
    return decide_batch([envelope], **deps)[0]


def decide_batch(
    envelopes: Sequence[Envelope], *, sessions: Callable[[], Session], **deps: Any
) -> list[StoredDecision | None]:
    """Decide a batch of offer requests in a transaction of its own; one stored decision per
    request, None for each duplicate, in order. Takes choose_within's keyword arguments.
    Raises (nothing stored, every reservation given back) when the transaction fails: the
    consumer loop then splits the batch to find the poison one."""
    return prepare_batch(envelopes, sessions=sessions, **deps)()


def prepare_batch(
    envelopes: Sequence[Envelope], *, sessions: Callable[[], Session], **deps: Any
) -> Callable[[], list[StoredDecision | None]]:
    """decide_batch in two steps: the reads, the choices and the reservations now, in a
    transaction opened here; the returned `finish` signs and writes the batch, commits and returns
    what decide_batch returns. `finish` may run on another thread (once: the decision
    loop's writer, shared/consumer_pipelined.py), while this one prepares the next batch.
    If either step raises, nothing is stored and every reservation was given back."""
    requests = [payload_as(e, OfferRequested) for e in envelopes]
    session = sessions()
    transaction = session.begin()
    try:
        chosen = choose_within(
            session,
            requests,
            event_ids=[e.event_id for e in envelopes],
            asked_at={
                r.request_id: e.occurred_at for r, e in zip(requests, envelopes, strict=True)
            },
            **deps,
        )
    except BaseException:
        transaction.rollback()
        session.close()
        raise

    def finish() -> list[StoredDecision | None]:
        decided: DecidedBatch | None = None
        try:
            decided = chosen.store()
            transaction.commit()
        except BaseException:
            if decided is not None:  # else store() gave back what was reserved
                decided.rolled_back()
            if transaction.is_active:
                transaction.rollback()
            raise
        finally:
            session.close()
        decided.committed()
        return decided.results

    return finish


def decide_within(
    session: Session, requests: Sequence[OfferRequested], **deps: Any
) -> DecidedBatch:
    """Decide `requests` in the caller's open transaction (the drop runner decides a page of
    followers in the page's own): choose_within, then store. Takes choose_within's keyword
    arguments. The caller commits, then calls `committed()` on the result, or
    `rolled_back()` if its transaction failed. If this raises, it has given back what it
    reserved."""
    return choose_within(session, requests, **deps).store()


def choose_within(
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
) -> ChosenBatch:
    """Choose for `requests` in the caller's open transaction: what each gets, its
    reservation taken; nothing signed or written yet (`store` signs the coupons, builds the
    rows and writes them: on the decision loop's writer thread, off the serial path).
    `event_ids` are the consumed events' ids (a twin event in the batch is a duplicate) and
    `asked_at` when each request was made (the consumed event's `occurred_at`, by request
    id); a request made in-process has neither. If this raises, it has given back what it
    reserved."""
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
    found = read_inputs(
        session,
        [r.request_id for r in requests],
        list(dict.fromkeys(r.customer_id for r in requests)),
        now,
        campaigns or ActiveCampaigns(),
        [r.request_id for r in requests if r.drop_id is not None],
    )
    fresh = _fresh(requests, event_ids, found.decided)
    # choose_batch gives back what it reserved if it raises.
    outcomes = choose_batch(session, [requests[i] for i in fresh], found, now, deps, asked_at or {})
    return ChosenBatch(
        session=session,
        requests=requests,
        fresh=fresh,
        batch=[Decided(requests[i], outcome) for i, outcome in zip(fresh, outcomes, strict=True)],
        decided_at=now,
        model_version=scorer.model_version,
        coupon_key=coupon_key,
        drop_campaigns=found.drop_campaigns,
        reservations=reservations,
        features=features,
        started=started,
    )


@dataclass
class ChosenBatch:
    """A batch chosen in an open transaction, not written yet."""

    session: Session
    requests: Sequence[OfferRequested]
    fresh: list[int]  # indexes of the requests decided (the rest are duplicates)
    batch: list[Decided]  # the fresh requests with their outcomes, reservations taken
    decided_at: datetime
    model_version: str
    coupon_key: bytes  # coupons are signed by `store`
    drop_campaigns: Mapping[str, str | None]
    reservations: ReservationStore
    features: FeatureSource
    started: float

    def store(self) -> DecidedBatch:
        """Write the decisions, coupons and offer.decided events in the transaction. If this
        raises, it has given back every reservation taken."""
        batch = self.batch
        try:
            sign_coupons(batch, self.coupon_key, self.decided_at)
            rows = batch_rows(batch, self.decided_at, self.model_version)
            stored = write_rows(self.session, rows)
            _tally_drops(self.session, batch, stored, self.drop_campaigns)
        except BaseException:
            release_taken(self.reservations, [d.outcome for d in batch])
            raise
        chosen = set(self.fresh)
        results = [
            stored.get(r.request_id) if i in chosen else None for i, r in enumerate(self.requests)
        ]
        return DecidedBatch(batch, stored, results, self.reservations, self.features, self.started)


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
