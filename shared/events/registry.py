"""Which schema validates each (event type, version), and which topic carries each type."""

from __future__ import annotations

from shared.events.base import Strict
from shared.events.payloads import (
    CampaignBudgetExhausted,
    CampaignStatusChanged,
    CouponDelivered,
    CouponRedeemed,
    CouponRedemptionRejected,
    CouponVoided,
    CustomerFollowed,
    CustomerLinked,
    CustomerOptedIn,
    CustomerOptedOut,
    CustomerUnfollowed,
    CustomerUnlinked,
    LineWebhookEventReceived,
    OfferDecided,
    OfferRequested,
    SaleRecorded,
)
from shared.events.topics import (
    CAMPAIGN_EVENTS,
    CHAT_INBOUND,
    COUPON_EVENTS,
    CUSTOMER_EVENTS,
    OFFER_DECISIONS,
    OFFER_REQUESTS,
    SALES_EVENTS,
)

SCHEMAS: dict[tuple[str, int], type[Strict]] = {
    ("line.webhook_event", 1): LineWebhookEventReceived,
    ("customer.followed", 1): CustomerFollowed,
    ("customer.unfollowed", 1): CustomerUnfollowed,
    ("customer.linked", 1): CustomerLinked,
    ("customer.unlinked", 1): CustomerUnlinked,
    ("customer.opted_out", 1): CustomerOptedOut,
    ("customer.opted_in", 1): CustomerOptedIn,
    ("offer.requested", 1): OfferRequested,
    ("offer.decided", 1): OfferDecided,
    ("coupon.delivered", 1): CouponDelivered,
    ("coupon.redeemed", 1): CouponRedeemed,
    ("coupon.redemption_rejected", 1): CouponRedemptionRejected,
    ("coupon.voided", 1): CouponVoided,
    ("sale.recorded", 1): SaleRecorded,
    ("campaign.activated", 1): CampaignStatusChanged,
    ("campaign.paused", 1): CampaignStatusChanged,
    ("campaign.ended", 1): CampaignStatusChanged,
    ("campaign.budget_exhausted", 1): CampaignBudgetExhausted,
}

TOPIC_OF_TYPE: dict[str, str] = {
    "line.webhook_event": CHAT_INBOUND,
    "customer.followed": CUSTOMER_EVENTS,
    "customer.unfollowed": CUSTOMER_EVENTS,
    "customer.linked": CUSTOMER_EVENTS,
    "customer.unlinked": CUSTOMER_EVENTS,
    "customer.opted_out": CUSTOMER_EVENTS,
    "customer.opted_in": CUSTOMER_EVENTS,
    "offer.requested": OFFER_REQUESTS,
    "offer.decided": OFFER_DECISIONS,
    "coupon.delivered": COUPON_EVENTS,
    "coupon.redeemed": COUPON_EVENTS,
    "coupon.redemption_rejected": COUPON_EVENTS,
    "coupon.voided": COUPON_EVENTS,
    "sale.recorded": SALES_EVENTS,
    "campaign.activated": CAMPAIGN_EVENTS,
    "campaign.paused": CAMPAIGN_EVENTS,
    "campaign.ended": CAMPAIGN_EVENTS,
    "campaign.budget_exhausted": CAMPAIGN_EVENTS,
}
