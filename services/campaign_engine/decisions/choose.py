"""What each request of a decision batch gets (docs/architecture.md § Decisions): consent,
candidates, score, holdout, issuance limit, reservation.

The batch reads every customer's features, usage and held reservations in one Redis round
trip (decisions/redis_reads.py), scores every candidate row in one model call, and reserves
every chosen offer in one script call.
Redis trouble anywhere on the way means no coupon (`redis_unavailable`), never a coupon
past a cap: the reservation script checks every limit again, in request order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import structlog
from sqlalchemy.orm import Session

from services.campaign_engine.budget.exhaustion import exhausted_budgets
from services.campaign_engine.budget.limits import CUSTOMER_CAPS, BudgetName, Limits, Usage
from services.campaign_engine.budget.reservation_store import (
    Refused,
    Reservation,
    ReservationStore,
    Wanted,
)
from services.campaign_engine.budget.seeding import (
    current_usage,
    reserve_all,
)
from services.campaign_engine.decisions.candidates import (
    CampaignTerms,
    Candidate,
    eligible_candidates,
    message_costs,
    no_candidate_reason,
    refused_reason,
)
from services.campaign_engine.decisions.consent import refuses
from services.campaign_engine.decisions.inputs import DecisionInputs
from services.campaign_engine.decisions.policy import (
    Choice,
    PolicyConfig,
    Scorer,
    UpliftScoring,
    in_holdout,
)
from services.campaign_engine.decisions.record import Outcome
from services.campaign_engine.decisions.redis_reads import read_batch
from services.campaign_engine.decisions.reserving import (
    REDIS_ERRORS,
    give_back,
    wanted_reservation,
    without_held,
)
from services.campaign_engine.decisions.scoring import ToScore, choose_many, ranking_version
from services.campaign_engine.features.store import FeatureSource
from shared.events import OfferRequested
from shared.model.features import DecisionContext

log = structlog.get_logger(__name__)

# For each customer (in order; one may repeat): may one more coupon be issued now (each
# True takes a token). One round trip for a batch (RateLimiter.take_each).
IssuanceLimit = Callable[[Sequence[str]], list[bool]]


@dataclass(frozen=True)
class Deciding:
    """What deciding needs besides the database session."""

    reservations: ReservationStore
    features: FeatureSource
    scorer: Scorer
    policy: PolicyConfig
    holdout_key: bytes
    rng: np.random.Generator
    uplift_scorer: UpliftScoring | None = None
    issuance: IssuanceLimit | None = None


@dataclass
class _Scored:
    """A request that got as far as scoring."""

    at: int
    candidates: list[Candidate]
    exhausted: dict[str, list[BudgetName]]


def choose_batch(
    session: Session,
    requests: Sequence[OfferRequested],
    found: DecisionInputs,
    now: datetime,
    deps: Deciding,
    asked_at: Mapping[str, datetime],  # when each request (by id) was made, where known
) -> list[Outcome]:
    """One outcome per request, in order; a reservation is taken for each coupon."""
    outcomes: list[Outcome | None] = [None] * len(requests)
    going_on: list[int] = []
    for i, request in enumerate(requests):
        offered = found.campaigns_for(request.request_id, request.drop_id)
        if refuses(found.customer(request.customer_id), request, asked_at.get(request.request_id)):
            outcomes[i] = Outcome("none", "opted_out")
        elif offered is None:
            outcomes[i] = Outcome("none", "drop_cancelled")
        elif not offered:
            outcomes[i] = Outcome("none", "no_active_campaign")
        else:
            going_on.append(i)
    if going_on:
        try:
            held = _candidates_to_coupons(session, requests, going_on, found, now, deps, outcomes)
            _note_held(requests, going_on, held, outcomes)
        except REDIS_ERRORS as exc:
            log.warning("redis_unavailable_no_coupon", requests=len(going_on), error=str(exc))
            give_back(deps.reservations, outcomes)
            for i in going_on:
                outcomes[i] = Outcome("none", "redis_unavailable")
        except BaseException:
            give_back(deps.reservations, outcomes)
            raise
    return [o if o is not None else Outcome("none", "redis_unavailable") for o in outcomes]


def _candidates_to_coupons(
    session: Session,
    requests: Sequence[OfferRequested],
    going_on: list[int],
    found: DecisionInputs,
    now: datetime,
    deps: Deciding,
    outcomes: list[Outcome | None],
) -> dict[tuple[str, str], tuple[int, int]]:
    """Fill in the outcome of each request that may get a coupon; returns the reservations
    the requests already held ((campaign, request id) → (face, serial))."""
    known, usages, held = read_batch(
        session, deps.features, deps.reservations, requests, going_on, found, now
    )
    scored: list[_Scored] = []
    to_score: list[ToScore] = []
    terms = CampaignTerms(now, deps.policy.pacing_slack)
    for i in going_on:
        request, ctx = requests[i], requests[i].context
        exhausted: dict[str, list[BudgetName]] = {}
        candidates, refusals = eligible_candidates(
            without_held(usages, held, request) if held else usages,
            found.campaigns_for(request.request_id, request.drop_id) or [],
            request.customer_id,
            ctx.language,
            known[request.customer_id],
            found.customer(request.customer_id),
            now,
            exhausted,
            push=request.drop_id is not None,
            pacing_slack=deps.policy.pacing_slack,
            terms=terms,
        )
        if not candidates:
            outcomes[i] = Outcome("none", no_candidate_reason(refusals), exhausted=exhausted)
            continue
        scored.append(_Scored(i, candidates, exhausted))
        context = DecisionContext(
            local_hour=ctx.local_hour,
            weekday=ctx.weekday,
            intent=ctx.intent,
            sentiment=ctx.sentiment,
            language=ctx.language,
        )
        offers = [c.features for c in candidates]
        to_score.append(
            ToScore(known[request.customer_id], context, offers, message_costs(candidates))
        )
    if not scored:
        return held
    deps.scorer.maybe_reload()
    if deps.uplift_scorer is not None:
        deps.uplift_scorer.maybe_reload()
    choices = choose_many(deps.scorer, to_score, deps.policy, deps.rng, deps.uplift_scorer)
    version = ranking_version(deps.scorer, deps.policy, deps.uplift_scorer)
    wanting: list[tuple[_Scored, Choice]] = []
    for s, choice in zip(scored, choices, strict=True):
        outcome = _before_reserving(requests[s.at], s, choice, version, deps)
        if outcome is None:
            wanting.append((s, choice))
        else:
            outcomes[s.at] = outcome
    reserving: list[tuple[_Scored, Choice, Wanted]] = []
    campaign_terms: dict[str, tuple[Limits, int]] = {}  # what a reservation of each takes
    for (s, choice), allowed in zip(wanting, _may_issue(requests, wanting, deps), strict=True):
        if allowed is None:
            outcomes[s.at] = Outcome("none", "redis_unavailable")
        elif not allowed:
            # docs/interfaces.md § Rate limits: closed, so Redis down means no coupon too.
            outcomes[s.at] = Outcome("none", "rate_limited", **_logged(choice, s, version))
        else:
            assert choice.index is not None
            customer_id = requests[s.at].customer_id
            wanted = wanted_reservation(
                requests[s.at].request_id,
                customer_id,
                s.candidates[choice.index],
                now,
                deps.policy.pacing_slack,
                deps.features.counter_key(customer_id),
                campaign_terms,
            )
            reserving.append((s, choice, wanted))
    taken = reserve_all(
        session,
        deps.reservations,
        [w for _, _, w in reserving],
        now,
        {c.campaign_id: c for c in found.campaigns},
    )
    for (s, choice, _), got in zip(reserving, taken, strict=True):
        outcomes[s.at] = _reserved(session, requests[s.at], s, choice, got, version, now, deps)
    return held


def _note_held(
    requests: Sequence[OfferRequested],
    going_on: list[int],
    held: dict[tuple[str, str], tuple[int, int]],
    outcomes: list[Outcome | None],
) -> None:
    """Keep on each outcome the reservations its request held (given back after commit
    unless the outcome took them over)."""
    if not held:
        return
    for i in going_on:
        outcome = outcomes[i]
        if outcome is not None:
            rid = requests[i].request_id
            outcome.held = {cid: serial for (cid, r), (_, serial) in held.items() if r == rid}


def _before_reserving(
    request: OfferRequested, s: _Scored, choice: Choice, version: str, deps: Deciding
) -> Outcome | None:
    """The outcome of a scored request that wants no reservation, else None."""
    if choice.fallback_reason:
        log.error(
            "scoring_fell_back", customer_id=request.customer_id, error=choice.fallback_reason
        )
        return Outcome("none", "model_error", exhausted=s.exhausted)
    logged = _logged(choice, s, version)
    if choice.index is None:
        return Outcome("none", "policy_chose_none", choice.propensity, **logged)
    chosen = s.candidates[choice.index]
    campaign = chosen.campaign
    if in_holdout(
        request.customer_id, campaign.campaign_id, deps.holdout_key, campaign.holdout_pct
    ):
        return Outcome("holdout", "holdout", choice.propensity, choice.score, chosen, **logged)
    return None


def _may_issue(
    requests: Sequence[OfferRequested], wanting: list[tuple[_Scored, Choice]], deps: Deciding
) -> list[bool | None]:
    """The issuance limit of each request that wants a coupon, in one call (None: Redis
    could not say)."""
    if deps.issuance is None or not wanting:
        return [True] * len(wanting)
    try:
        return list(deps.issuance([requests[s.at].customer_id for s, _ in wanting]))
    except REDIS_ERRORS as exc:
        log.warning("redis_unavailable_no_coupon", requests=len(wanting), error=str(exc))
        return [None] * len(wanting)


def _reserved(
    session: Session,
    request: OfferRequested,
    s: _Scored,
    choice: Choice,
    got: Reservation | Refused,
    version: str,
    now: datetime,
    deps: Deciding,
) -> Outcome:
    """The outcome once the reservation script answered."""
    assert choice.index is not None
    chosen = s.candidates[choice.index]
    cid = chosen.campaign.campaign_id
    logged = _logged(choice, s, version)
    if isinstance(got, Refused):
        # Taken by a concurrent decision (or an earlier request of this batch) meanwhile.
        if got.limit in CUSTOMER_CAPS:
            return Outcome("none", "cap_reached", **logged)
        used: Usage | None = None
        try:
            used = current_usage(
                session, deps.reservations, chosen.campaign, request.customer_id, now
            )
            s.exhausted[cid] = exhausted_budgets(chosen.campaign, used)
        except REDIS_ERRORS as exc:
            log.warning("budget_not_announced_redis_unavailable", campaign_id=cid, error=str(exc))
        # A paced budget refuses at its allowance for now: `paced` while the budget has room.
        return Outcome("none", refused_reason(chosen, used), **logged)
    s.exhausted[cid] = exhausted_budgets(chosen.campaign, got.usage)
    return Outcome(
        choice.arm, None, choice.propensity, choice.score, chosen, reservation=got, **logged
    )


def _logged(choice: Choice, s: _Scored, version: str) -> dict[str, Any]:
    """The Outcome fields every decision that got as far as scoring keeps for learning."""
    return {
        "choice": choice,
        "scored": s.candidates,
        "exhausted": s.exhausted,
        "model_version": version,
    }
