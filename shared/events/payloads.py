"""The payload schema of every event type (docs/interfaces.md § Events)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, Field

from shared.events.base import Strict
from shared.events.vocabulary import DEFAULT_LANGUAGE, Arm, Language

# A UTC offset a customer's zone may have, in minutes (real ones are -12:00 to +14:00).
MAX_OFFSET_MINUTES = 18 * 60


class LineWebhookEventReceived(Strict):
    """A LINE webhook event as received, after the signature check (chat_agent only)."""

    destination: str
    event: dict[str, Any]


class CustomerFollowed(Strict):
    customer_id: str
    language: Language = DEFAULT_LANGUAGE
    # The customer's first follow ever (a re-follow keeps it); None from older producers.
    first_followed_at: AwareDatetime | None = None


class CustomerUnfollowed(Strict):
    customer_id: str


class CustomerLinked(Strict):
    customer_id: str
    member_hash: str = Field(min_length=16)


class CustomerUnlinked(Strict):
    """The member moved to another customer (a verified link): its sales stop counting here."""

    customer_id: str
    member_hash: str = Field(min_length=16)


class CustomerOptedOut(Strict):
    customer_id: str


class CustomerOptedIn(Strict):
    customer_id: str


class OfferContext(Strict):
    intent: str
    sentiment: float = Field(ge=-1.0, le=1.0)
    language: Language
    local_hour: int = Field(ge=0, le=23)
    weekday: int = Field(default=0, ge=0, le=6)


class OfferRequested(Strict):
    request_id: str
    customer_id: str
    context: OfferContext
    # Set when a campaign drop asked (docs/interfaces.md § Campaign drops): the coupon, if
    # any, goes out as a push, so the campaign's message_cost enters the policy.
    drop_id: str | None = None
    # A drop's: the customer's UTC offset where known (their till sales), so the push
    # keeps quiet hours in their own time; passed on in offer.decided.
    utc_offset_minutes: int | None = Field(
        default=None, ge=-MAX_OFFSET_MINUTES, le=MAX_OFFSET_MINUTES
    )


class Discount(Strict):
    type: Literal["amount", "percent", "free_item"]
    value: int = Field(ge=0)


class IssuedCoupon(Strict):
    code: str
    title: str
    discount: Discount
    valid_from: AwareDatetime
    expires_at: AwareDatetime
    min_basket: int = Field(default=0, ge=0)


class OfferDecided(Strict):
    request_id: str
    customer_id: str
    campaign_id: str | None
    offer_id: str | None
    arm: Arm
    coupon: IssuedCoupon | None
    propensity: float = Field(ge=0.0, le=1.0)
    score: float | None
    model_version: str
    reason: str | None = None
    drop_id: str | None = None
    utc_offset_minutes: int | None = Field(
        default=None, ge=-MAX_OFFSET_MINUTES, le=MAX_OFFSET_MINUTES
    )


class CouponDelivered(Strict):
    """chat_agent handed the coupon message to the messaging platform."""

    code: str
    customer_id: str
    campaign_id: str
    request_id: str
    channel: Literal["reply", "push"]
    drop_id: str | None = None


class CouponDeliveryFailed(Strict):
    """chat_agent gave up delivering a coupon message (the platform refused it for good)."""

    code: str
    customer_id: str
    campaign_id: str
    request_id: str
    drop_id: str | None = None
    reason: str = ""


class CouponSettled(Strict):
    """A coupon's discount booked (or reversed) on one till transaction."""

    code: str
    customer_id: str | None
    campaign_id: str
    offer_id: str
    transaction_id: str
    store_id: str
    discount: int = Field(ge=0)


class CouponRedeemed(CouponSettled):
    basket_total: int = Field(ge=0)


class CouponRedemptionRejected(Strict):
    """Rejections of one batch with the same reason, campaign and customer: the first of them."""

    code: str
    reason: str
    customer_id: str | None
    campaign_id: str | None
    transaction_id: str
    store_id: str
    count: int = Field(default=1, ge=1)  # how many such rejections the batch had


class CouponVoided(CouponSettled):
    """The redemption of a voided transaction, reversed."""


class SaleRecorded(Strict):
    customer_id: str
    transaction_id: str
    store_id: str
    total: int = Field(ge=0)
    categories: list[str]
    occurred_at: AwareDatetime


class CampaignSnapshot(Strict):
    """What other services need to know of a campaign (they keep their own copy)."""

    campaign_id: str
    number: int
    name: str
    status: Literal["draft", "active", "paused", "ended"]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    offers: list[dict[str, Any]]
    budget: dict[str, Any]
    caps: dict[str, Any]
    holdout_pct: float
    revenue_share: dict[str, Any]
    per_call_fee: int
    # docs/interfaces.md § Marketer campaign API; a snapshot from before pacing was asap.
    message_cost: int = Field(default=0, ge=0)
    pacing: Literal["even", "asap"] = "asap"


class CampaignStatusChanged(Strict):
    campaign_id: str
    campaign: CampaignSnapshot


class CampaignBudgetExhausted(Strict):
    campaign_id: str
    budget: Literal["max_coupons", "max_redemptions", "max_discount_total"]


class QuietHours(Strict):
    """No drop pushes from `start` to `end` (HH:MM, may span midnight) in `timezone`."""

    start: str
    end: str
    timezone: str


class DropQueued(Strict):
    """A campaign drop was queued: the sending rules chat_agent keeps for its pushes."""

    drop_id: str
    campaign_id: str
    max_messages: int | None = Field(default=None, ge=1)
    send_after: AwareDatetime | None = None
    quiet_hours: QuietHours | None = None


class DropCancelled(Strict):
    """A campaign drop was cancelled: its pushes not yet sent are not sent."""

    drop_id: str
    campaign_id: str
