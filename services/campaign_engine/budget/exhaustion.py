"""Exhausted budgets: which campaign-wide budgets leave nothing to issue, announced once each.

`campaign.budget_exhausted` goes out through the outbox once per (campaign, budget): a
row in budget_exhaustions records it in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.campaign_engine.budget.limits import BudgetName, Limits, Usage, face_value
from services.campaign_engine.campaigns.offers import live_offers
from services.campaign_engine.models import PRODUCER, BudgetExhaustion, Campaign, Outbox
from shared.events import CampaignBudgetExhausted
from shared.outbox import add_event

log = structlog.get_logger(__name__)


def exhausted_budgets(campaign: Campaign, usage: Usage) -> list[BudgetName]:
    """The campaign-wide budgets that leave no coupon of any live offer to issue."""
    limits = Limits.of(campaign.budget, campaign.caps)
    faces = [face_value(o) for o in live_offers(campaign)] or [0]
    out: list[BudgetName] = []
    if limits.max_coupons is not None and usage.issued >= limits.max_coupons:
        out.append("max_coupons")
    if (
        limits.max_discount_total is not None
        and usage.money + min(faces) > limits.max_discount_total
    ):
        out.append("max_discount_total")
    if limits.max_redemptions is not None and usage.redeemed >= limits.max_redemptions:
        out.append("max_redemptions")
    return out


# (campaign, budget) pairs seen announced in the database: an exhausted campaign that
# stays active then costs no query per decision. Only committed announcements go in.
_KNOWN_ANNOUNCED: set[tuple[str, str]] = set()


def announce_exhausted(
    session: Session, campaign_id: str, budgets: Sequence[BudgetName]
) -> list[BudgetName]:
    """Publish campaign.budget_exhausted once per (campaign, budget); returns the new ones."""
    announced = []
    for budget in budgets:
        if (campaign_id, budget) in _KNOWN_ANNOUNCED:
            continue
        if session.get(BudgetExhaustion, (campaign_id, budget)) is not None:
            _KNOWN_ANNOUNCED.add((campaign_id, budget))
            continue
        try:
            with session.begin_nested():
                session.add(BudgetExhaustion(campaign_id=campaign_id, budget=budget))
                session.flush()
                add_event(
                    session,
                    Outbox,
                    "campaign.budget_exhausted",
                    CampaignBudgetExhausted(campaign_id=campaign_id, budget=budget),
                    key=campaign_id,
                    producer=PRODUCER,
                )
        except IntegrityError:
            continue  # a concurrent decision announced it first
        announced.append(budget)
        log.info("campaign_budget_exhausted", campaign_id=campaign_id, budget=budget)
    return announced
