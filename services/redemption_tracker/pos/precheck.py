"""`GET /v1/coupons/{code}`: would this code be honoured here, now? Changes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import CampaignUsage, Redemption
from services.redemption_tracker.pos.batch import load_campaign_by_number, load_decisions
from services.redemption_tracker.pos.checks import Basket, check_coupon, read_code


def precheck(tracker: Tracker, raw_code: str, store_id: str) -> dict[str, Any]:
    """The same checks as a sale, without a basket (min_basket is shown, not checked)."""
    presented = read_code(tracker.coupon_keys, raw_code)
    if presented.claims is None or presented.code is None:
        return {
            "code": raw_code,
            "valid": False,
            "reason": presented.reason,
            "offer": None,
            "expires_at": None,
        }
    claims, code = presented.claims, presented.code
    now = tracker.clock()
    with tracker.sessions() as s:
        campaign = load_campaign_by_number(s, {claims.campaign_no}).get(claims.campaign_no)
        decision = load_decisions(s, {code}).get(code)
        verdict = check_coupon(
            claims, campaign, decision, Basket(store_id, now, 0, ()), check_basket=False
        )
        reason = verdict.reason
        if reason is None:
            held = s.execute(
                select(Redemption.id).where(Redemption.code == code, Redemption.voided_at.is_(None))
            ).first()
            if held is not None:
                reason = "already_redeemed"
        if reason is None and campaign is not None:
            usage = s.get(CampaignUsage, campaign.campaign_id)
            used_n = usage.redemptions if usage else 0
            used_d = usage.discount_total if usage else 0
            if (campaign.max_redemptions is not None and used_n >= campaign.max_redemptions) or (
                campaign.max_discount_total is not None and used_d >= campaign.max_discount_total
            ):
                reason = "redemption_budget_exhausted"
    offer = None
    if verdict.offer is not None and campaign is not None:
        offer = {"campaign_id": campaign.campaign_id, **verdict.offer.public()}
    return {
        "code": code,
        "valid": reason is None,
        "reason": reason,
        "offer": offer,
        "expires_at": claims.expires_at,
    }
