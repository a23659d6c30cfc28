"""The offers a customer is eligible for now, and why the others are not.

A campaign's offers are candidates when the customer is in its audience and one more
coupon of the offer breaks no budget or cap (read from Redis, seeded from the database
when missing). The policy then chooses among the candidates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from services.campaign_engine.budget.exhaustion import exhausted_budgets
from services.campaign_engine.budget.limits import (
    CUSTOMER_CAPS,
    BudgetName,
    Limits,
    campaign_day,
    face_value,
)
from services.campaign_engine.budget.reservations import ReservationStore
from services.campaign_engine.budget.seeding import current_usages
from services.campaign_engine.campaigns.offers import live_offers, offer_category
from services.campaign_engine.decisions.audience import audience_admits
from services.campaign_engine.decisions.inputs import CustomerState
from services.campaign_engine.models import Campaign
from shared.model.features import CustomerFeatures, OfferFeatures


@dataclass
class Candidate:
    """One offer the customer may get: its campaign, face value and campaign day."""

    campaign: Campaign
    offer: dict[str, Any]
    face: int
    day: str


def eligible_candidates(
    session: Session,
    reservations: ReservationStore,
    campaigns: list[Campaign],
    customer_id: str,
    language: str,
    known: CustomerFeatures,
    customer: CustomerState,
    now: datetime,
    exhausted: dict[str, list[BudgetName]],
) -> tuple[list[Candidate], list[str]]:
    """Offers the customer is eligible for now, and the limits that excluded the others.

    Budgets found used up are added to `exhausted` (by campaign id), to be announced.
    """
    out: list[Candidate] = []
    refusals: list[str] = []
    admitted = [
        c for c in campaigns if audience_admits(c.audience, known, language, customer.linked)
    ]
    refusals += ["audience"] * (len(campaigns) - len(admitted))
    usages = current_usages(session, reservations, admitted, customer_id, now)
    for campaign, usage in zip(admitted, usages, strict=True):
        limits = Limits.of(campaign.budget, campaign.caps)
        day = campaign_day(now, campaign.utc_offset_minutes)
        used_up = exhausted_budgets(campaign, usage)
        if used_up:
            exhausted[campaign.campaign_id] = used_up
        for offer in live_offers(campaign):
            face = face_value(offer)
            refusal = usage.refusal(limits, face)
            if refusal:
                refusals.append(refusal)
            else:
                out.append(Candidate(campaign, offer, face, day))
    return out, refusals


def no_candidate_reason(refusals: list[str]) -> str:
    """Why no offer was eligible: a customer cap, a budget, or nothing for this customer."""
    if any(r in CUSTOMER_CAPS for r in refusals):
        return "cap_reached"
    if any(r != "audience" for r in refusals):
        return "budget_exhausted"
    return "no_eligible_offer"


def offer_features(offer: Mapping[str, Any]) -> OfferFeatures:
    """The offer as the propensity model sees it."""
    return OfferFeatures(
        discount_type=offer["discount"]["type"],
        discount_value=float(offer["discount"]["value"]),
        category=offer_category(offer) or "other",
        min_basket=float(offer["min_basket"]),
    )
