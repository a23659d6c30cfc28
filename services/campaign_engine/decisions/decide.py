"""Deciding an offer request (docs/architecture.md § Decisions): candidates, holdout, score,
reserve, sign, log.

Every request ends in exactly one stored decision and one `offer.decided` event (coupon
or not), committed together. A reservation taken in Redis is given back if that commit
fails, and Redis trouble means no coupon (`arm: none`, `redis_unavailable`), never a
coupon past a cap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import redis
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.campaign_engine import metrics
from services.campaign_engine.budget.exhaustion import exhausted_budgets
from services.campaign_engine.budget.limits import CUSTOMER_CAPS, BudgetName
from services.campaign_engine.budget.reservations import (
    Refused,
    ReservationStore,
    ReservationsUnavailable,
)
from services.campaign_engine.budget.seeding import current_usage, reserve
from services.campaign_engine.decisions.candidates import (
    Candidate,
    eligible_candidates,
    no_candidate_reason,
    offer_features,
)
from services.campaign_engine.decisions.inputs import (
    ActiveCampaigns,
    DecisionInputs,
    read_inputs,
)
from services.campaign_engine.decisions.policy import (
    Choice,
    PolicyConfig,
    Scorer,
    UpliftScoring,
    decide,
    in_holdout,
)
from services.campaign_engine.decisions.record import (
    Outcome,
    already_decided,
    issue_coupon,
    store_decision,
)
from services.campaign_engine.features.store import FeatureSource
from services.campaign_engine.models import Decision
from shared.db import utcnow
from shared.events import Envelope, OfferRequested, payload_as
from shared.model.features import DecisionContext

log = structlog.get_logger(__name__)

REDIS_ERRORS = (ReservationsUnavailable, redis.RedisError)
# True when the customer may be issued one more coupon now (takes a token).
IssuanceLimit = Callable[[str], bool]


def decide_offer(
    envelope: Envelope,
    *,
    sessions: Callable[[], Session],
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
) -> Decision | None:
    """Decide one offer request; returns the stored decision, or None for a duplicate.

    One transaction from the duplicate check to the commit (one connection, fewest round
    trips); the Redis reservation taken inside it is given back if it does not commit.
    """
    started = time.perf_counter()
    request = payload_as(envelope, OfferRequested)
    now = clock()
    outcome: Outcome | None = None
    try:
        with sessions() as session, session.begin():
            found = read_inputs(
                session,
                request.request_id,
                request.customer_id,
                now,
                campaigns or ActiveCampaigns(),
            )
            if found.decided:
                log.info("offer_request_duplicate", customer_id=request.customer_id)
                return None
            outcome = _choose(
                session,
                request,
                found,
                now,
                reservations=reservations,
                features=features,
                scorer=scorer,
                policy=policy,
                holdout_key=holdout_key,
                rng=rng or np.random.default_rng(),
                uplift_scorer=uplift_scorer,
                issuance=issuance,
            )
            if outcome.candidate is not None and outcome.reservation is not None:
                outcome.coupon = issue_coupon(
                    outcome.candidate, outcome.reservation, coupon_key, now
                )
            decision = store_decision(
                session, envelope, request, outcome, now, model_version=scorer.model_version
            )
    except IntegrityError:
        _release(reservations, outcome, request.customer_id)
        if not already_decided(sessions, request.request_id):
            raise  # e.g. a code collision after a re-seed: the retry takes a new serial
        # The same request (or event) was decided concurrently and committed first.
        log.info("offer_request_duplicate", customer_id=request.customer_id)
        return None
    except BaseException:
        _release(reservations, outcome, request.customer_id)
        raise
    if outcome.coupon is not None:
        metrics.COUPONS_ISSUED.inc()
        try:
            features.record_coupon_issued(request.customer_id)
        except REDIS_ERRORS as exc:
            log.warning("feature_update_failed", customer_id=request.customer_id, error=str(exc))
    metrics.DECISIONS.labels(outcome.arm, outcome.reason or "").inc()
    metrics.DECISION_SECONDS.observe(time.perf_counter() - started)
    log.info(
        "offer_decided",
        customer_id=request.customer_id,
        arm=outcome.arm,
        reason=outcome.reason,
        campaign_id=decision.campaign_id,
        offer_id=decision.offer_id,
    )
    return decision


def _choose(
    session: Session,
    request: OfferRequested,
    found: DecisionInputs,
    now: datetime,
    *,
    reservations: ReservationStore,
    features: FeatureSource,
    scorer: Scorer,
    policy: PolicyConfig,
    holdout_key: bytes,
    rng: np.random.Generator,
    uplift_scorer: UpliftScoring | None = None,
    issuance: IssuanceLimit | None = None,
) -> Outcome:
    if found.customer.opted_out:
        return Outcome("none", "opted_out")
    campaigns, customer = found.campaigns, found.customer
    if not campaigns:
        return Outcome("none", "no_active_campaign")
    ctx = request.context
    context = DecisionContext(
        local_hour=ctx.local_hour,
        weekday=ctx.weekday,
        intent=ctx.intent,
        sentiment=ctx.sentiment,
        language=ctx.language,
    )
    exhausted: dict[str, list[BudgetName]] = {}
    try:
        known = features.get(request.customer_id, now)
        candidates, refusals = eligible_candidates(
            session,
            reservations,
            campaigns,
            request.customer_id,
            ctx.language,
            known,
            customer,
            now,
            exhausted,
        )
        if not candidates:
            return Outcome("none", no_candidate_reason(refusals), exhausted=exhausted)
        scorer.maybe_reload()
        if uplift_scorer is not None:
            uplift_scorer.maybe_reload()
        offers = [offer_features(c.offer) for c in candidates]
        choice = decide(scorer, known, context, offers, policy, rng, uplift_scorer=uplift_scorer)
        if choice.fallback_reason:
            log.error(
                "scoring_fell_back", customer_id=request.customer_id, error=choice.fallback_reason
            )
            return Outcome("none", "model_error", exhausted=exhausted)
        scored = _logged(choice, candidates, exhausted)
        if choice.index is None:
            return Outcome("none", "policy_chose_none", choice.propensity, **scored)
        chosen = candidates[choice.index]
        cid = chosen.campaign.campaign_id
        if in_holdout(request.customer_id, cid, holdout_key, chosen.campaign.holdout_pct):
            return Outcome("holdout", "holdout", choice.propensity, choice.score, chosen, **scored)
        if issuance is not None and not issuance(request.customer_id):
            # docs/interfaces.md § Rate limits: closed, so Redis down means no coupon too.
            return Outcome("none", "rate_limited", **scored)
        taken = reserve(
            session,
            reservations,
            chosen.campaign,
            request.customer_id,
            chosen.day,
            chosen.face,
            now,
        )
        if isinstance(taken, Refused):
            # A concurrent decision took what was left between the read and the reservation.
            if taken.limit in CUSTOMER_CAPS:
                return Outcome("none", "cap_reached", **scored)
            now_used = current_usage(
                session, reservations, chosen.campaign, request.customer_id, now
            )
            exhausted[cid] = exhausted_budgets(chosen.campaign, now_used)
            return Outcome("none", "budget_exhausted", **scored)
        exhausted[cid] = exhausted_budgets(chosen.campaign, taken.usage)
        return Outcome(
            choice.arm, None, choice.propensity, choice.score, chosen, reservation=taken, **scored
        )
    except REDIS_ERRORS as exc:
        log.warning("redis_unavailable_no_coupon", customer_id=request.customer_id, error=str(exc))
        return Outcome("none", "redis_unavailable")


def _logged(
    choice: Choice, scored: list[Candidate], exhausted: dict[str, list[BudgetName]]
) -> dict[str, Any]:
    """The Outcome fields every decision that got as far as scoring keeps for learning."""
    return {"choice": choice, "scored": scored, "exhausted": exhausted}


def _release(reservations: ReservationStore, outcome: Outcome | None, customer_id: str) -> None:
    taken = outcome.reservation if outcome is not None else None
    if taken is None:
        return
    try:
        reservations.release(taken)
        metrics.RESERVATIONS_RELEASED.inc()
    except REDIS_ERRORS as exc:
        # Fail safe: an unreleased reservation under-spends the budget, it never over-spends.
        log.error("reservation_release_failed", customer_id=customer_id, error=str(exc))
