"""The offers a customer is eligible for now, and why the others are not.

A campaign's offers are candidates when the customer is in its audience and one more
coupon of the offer breaks no budget or cap (read from Redis, seeded from the database
when missing) and, for an evenly paced campaign, does not run ahead of its budget's share
for now (docs/architecture.md § Budget pacing). The policy then chooses among the
candidates; a candidate that would go out as a push carries its campaign's message cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.campaign_engine.budget.exhaustion import exhausted_budgets
from services.campaign_engine.budget.limits import (
    CUSTOMER_CAPS,
    BudgetName,
    Limits,
    Usage,
    campaign_day,
    face_value,
)
from services.campaign_engine.budget.pacing import (
    DEFAULT_PACING_SLACK,
    PACED,
    budget_refusal,
    paced_limits,
    pacing_refusal,
)
from services.campaign_engine.campaigns.offers import live_offers, offer_category
from services.campaign_engine.decisions.audience import audience_admits
from services.campaign_engine.decisions.inputs import CustomerState
from services.campaign_engine.models import Campaign
from shared.events import Discount
from shared.model.features import CustomerFeatures, OfferFeatures


@dataclass(frozen=True)
class Candidate:
    """One offer the customer may get: its campaign, face value, campaign day, the yen its
    message costs when it goes out as a push (0 for a reply: replies are free), and the
    offer as the model sees it. Nothing in it depends on the customer, so a batch builds
    each once (CampaignTerms) and every request eligible for it shares it."""

    campaign: Campaign
    offer: dict[str, Any]
    face: int
    day: str
    message_cost: int
    features: OfferFeatures
    discount: Discount  # the offer's discount as its coupon carries it (validated once)


def eligible_candidates(
    usages: Mapping[tuple[str, str], Usage],
    campaigns: list[Campaign],
    customer_id: str,
    language: str,
    known: CustomerFeatures,
    customer: CustomerState,
    now: datetime,
    exhausted: dict[str, list[BudgetName]],
    *,
    push: bool = False,
    pacing_slack: float = DEFAULT_PACING_SLACK,
    terms: CampaignTerms | None = None,
) -> tuple[list[Candidate], list[str]]:
    """Offers the customer is eligible for now, and the limits that excluded the others.

    Budgets found used up are added to `exhausted` (by campaign id), to be announced.
    `usages`: each (campaign id, customer id)'s usage, read for the whole decision batch
    (budget/seeding.py `read_usages`). `push`: the coupon would go out as a push (a drop),
    so each candidate carries its campaign's `message_cost` for the policy to subtract.
    `pacing_slack`: PolicyConfig.pacing_slack. `terms`: the batch's CampaignTerms.
    """
    out: list[Candidate] = []
    refusals: list[str] = []
    admitted = [
        c for c in campaigns if audience_admits(c.audience, known, language, customer.linked)
    ]
    refusals += ["audience"] * (len(campaigns) - len(admitted))
    terms = terms or CampaignTerms(now, pacing_slack)
    for campaign in admitted:
        usage = usages[(campaign.campaign_id, customer_id)]
        limits, used_up, offers = terms.of(campaign, usage)
        if used_up:
            exhausted[campaign.campaign_id] = used_up
        for reply, pushed, paced in offers:
            refusal = usage.refusal(limits, reply.face) or paced
            if refusal:
                refusals.append(refusal)
            else:
                out.append(pushed if push else reply)
    return out, refusals


# (limits, used-up budgets, [(candidate as a reply, candidate as a push, pacing refusal)])
_Terms = tuple[Limits, list[BudgetName], list[tuple[Candidate, Candidate, str | None]]]


class CampaignTerms:
    """What each campaign allows at `now` whoever asks: its limits, day, used-up budgets and
    each live offer's face value and pacing refusal. These depend on the campaign-wide
    usage only, which a decision batch reads once, so they are worked out once per batch
    (pass one to every eligible_candidates call of the batch); only the customer's caps
    are checked per request."""

    def __init__(self, now: datetime, pacing_slack: float = DEFAULT_PACING_SLACK) -> None:
        self._now, self._slack = now, pacing_slack
        self._known: dict[tuple[str, int, int, int, int], _Terms] = {}

    def of(self, campaign: Campaign, usage: Usage) -> _Terms:
        """(limits, used-up budgets, [(candidate as a reply, as a push, pacing refusal)])."""
        key = (campaign.campaign_id, campaign.revision, usage.issued, usage.money, usage.redeemed)
        if key not in self._known:
            limits = Limits.of(campaign.budget, campaign.caps)
            day = campaign_day(self._now, campaign.utc_offset_minutes)
            offers = []
            for offer in live_offers(campaign):
                face = face_value(offer)
                reply = Candidate(
                    campaign,
                    offer,
                    face,
                    day,
                    0,
                    offer_features(offer),
                    Discount.model_validate(offer["discount"]),
                )
                pushed = replace(reply, message_cost=campaign.message_cost)
                paced = pacing_refusal(
                    campaign.pacing,
                    limits,
                    usage,
                    face,
                    starts_at=campaign.starts_at,
                    ends_at=campaign.ends_at,
                    now=self._now,
                    slack=self._slack,
                )
                offers.append((reply, pushed, paced))
            self._known[key] = (limits, exhausted_budgets(campaign, usage), offers)
        return self._known[key]


def no_candidate_reason(refusals: list[str]) -> str:
    """Why no offer was eligible: a customer cap, a budget, pacing (only when nothing else
    stood in the way), or nothing for this customer."""
    if any(r in CUSTOMER_CAPS for r in refusals):
        return "cap_reached"
    if any(r not in ("audience", PACED) for r in refusals):
        return "budget_exhausted"
    if PACED in refusals:
        return PACED
    return "no_eligible_offer"


def reservation_limits(
    candidate: Candidate, now: datetime, pacing_slack: float = DEFAULT_PACING_SLACK
) -> Limits:
    """The limits to reserve the candidate's coupon under: its campaign's budget and caps,
    each paced budget lowered to its allowance for now (so pacing holds atomically across
    a batch and concurrent workers, as the budget does)."""
    c = candidate.campaign
    return paced_limits(
        c.pacing,
        Limits.of(c.budget, c.caps),
        starts_at=c.starts_at,
        ends_at=c.ends_at,
        now=now,
        slack=pacing_slack,
    )


def refused_reason(candidate: Candidate, usage: Usage | None) -> str:
    """Why a reservation under reservation_limits was refused on a campaign budget:
    `paced` when the budget itself still has room for this coupon, else `budget_exhausted`
    (also when the usage after the refusal could not be read)."""
    if usage is None:
        return "budget_exhausted"
    c = candidate.campaign
    return budget_refusal(c.pacing, Limits.of(c.budget, c.caps), usage, candidate.face)


def message_costs(candidates: list[Candidate]) -> list[float] | None:
    """Each candidate's message cost for the policy, or None when nothing is pushed (the
    policy's non-push path stays exactly as it was)."""
    if not any(c.message_cost for c in candidates):
        return None
    return [float(c.message_cost) for c in candidates]


def offer_features(offer: Mapping[str, Any]) -> OfferFeatures:
    """The offer as the propensity model sees it."""
    return OfferFeatures(
        discount_type=offer["discount"]["type"],
        discount_value=float(offer["discount"]["value"]),
        category=offer_category(offer) or "other",
        min_basket=float(offer["min_basket"]),
    )
