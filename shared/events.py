"""The event envelope and a versioned payload schema for every event of DESIGN §3.

Every message on every topic is an `Envelope`; its `payload` is validated against the
schema registered for its (`type`, `version`) both when it is published and when it is
consumed, so a producer cannot emit, and a consumer cannot apply, a malformed event.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError


class EventSchemaError(ValueError):
    """Raised when bytes or a payload do not form a valid tenin event."""


class Strict(BaseModel):
    """Base for payloads: unknown fields are an error, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Envelope(Strict):
    """The one envelope every topic carries."""

    event_id: uuid.UUID
    type: str
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str
    key: str
    payload: dict[str, Any]


# --- topics ---------------------------------------------------------------------------

CHAT_INBOUND = "chat.inbound"
CUSTOMER_EVENTS = "customer.events"
OFFER_REQUESTS = "offer.requests"
OFFER_DECISIONS = "offer.decisions"
COUPON_EVENTS = "coupon.events"
POS_TRANSACTIONS = "pos.transactions"
SALES_EVENTS = "sales.events"
CAMPAIGN_EVENTS = "campaign.events"

TOPICS = (
    CHAT_INBOUND,
    CUSTOMER_EVENTS,
    OFFER_REQUESTS,
    OFFER_DECISIONS,
    COUPON_EVENTS,
    POS_TRANSACTIONS,
    SALES_EVENTS,
    CAMPAIGN_EVENTS,
)


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of a topic."""
    return f"{topic}.dlq"


# --- payloads -------------------------------------------------------------------------

Language = Literal["ja", "en", "id"]
Arm = Literal["treatment", "explore", "holdout", "none"]


class LineWebhookEventReceived(Strict):
    """A LINE webhook event as received, after the signature check (chat_agent only)."""

    destination: str
    event: dict[str, Any]


class CustomerFollowed(Strict):
    customer_id: str
    language: Language = "ja"


class CustomerUnfollowed(Strict):
    customer_id: str


class CustomerLinked(Strict):
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


# Why a decision carries no coupon (None when it does).
NO_COUPON_REASONS = (
    "holdout",
    "no_active_campaign",
    "no_eligible_offer",
    "opted_out",
    "cap_reached",
    "budget_exhausted",
    "policy_chose_none",
    "redis_unavailable",
    "model_error",
)


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


class CouponDelivered(Strict):
    """chat_agent handed the coupon message to the messaging platform."""

    code: str
    customer_id: str
    campaign_id: str
    request_id: str
    channel: Literal["reply", "push"]


class CouponRedeemed(Strict):
    code: str
    customer_id: str | None
    campaign_id: str
    offer_id: str
    transaction_id: str
    store_id: str
    discount: int = Field(ge=0)
    basket_total: int = Field(ge=0)


class CouponRedemptionRejected(Strict):
    code: str
    reason: str
    customer_id: str | None
    campaign_id: str | None
    transaction_id: str
    store_id: str


class CouponVoided(Strict):
    code: str
    customer_id: str | None
    campaign_id: str
    offer_id: str
    transaction_id: str
    store_id: str
    discount: int = Field(ge=0)


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


class CampaignStatusChanged(Strict):
    campaign_id: str
    campaign: CampaignSnapshot


class CampaignBudgetExhausted(Strict):
    campaign_id: str
    budget: Literal["max_coupons", "max_redemptions", "max_discount_total"]


SCHEMAS: dict[tuple[str, int], type[Strict]] = {
    ("line.webhook_event", 1): LineWebhookEventReceived,
    ("customer.followed", 1): CustomerFollowed,
    ("customer.unfollowed", 1): CustomerUnfollowed,
    ("customer.linked", 1): CustomerLinked,
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


def _schema_for(event_type: str, version: int) -> type[Strict]:
    try:
        return SCHEMAS[(event_type, version)]
    except KeyError:
        raise EventSchemaError(f"unknown event type {event_type!r} version {version}") from None


def make_event(
    event_type: str,
    payload: Strict | dict[str, Any],
    *,
    key: str,
    producer: str,
    version: int = 1,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> Envelope:
    """Build a validated envelope; raises EventSchemaError if the payload is wrong."""
    schema = _schema_for(event_type, version)
    raw = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    try:
        checked = schema.model_validate(raw)
    except ValidationError as exc:
        raise EventSchemaError(f"invalid {event_type} payload: {exc}") from exc
    return Envelope(
        event_id=event_id or uuid.uuid4(),
        type=event_type,
        version=version,
        occurred_at=occurred_at or datetime.now(UTC),
        producer=producer,
        key=key,
        payload=checked.model_dump(mode="json"),
    )


def encode(envelope: Envelope) -> bytes:
    """Serialise an envelope to JSON bytes for the wire."""
    return envelope.model_dump_json().encode("utf-8")


def decode(raw: bytes) -> Envelope:
    """Parse and validate wire bytes (envelope and payload); raises EventSchemaError."""
    try:
        data = json.loads(raw)
        envelope = Envelope.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise EventSchemaError(f"not a valid envelope: {exc}") from exc
    parse_payload(envelope)
    return envelope


def parse_payload(envelope: Envelope) -> Strict:
    """The typed payload of an envelope, validated against its registered schema."""
    schema = _schema_for(envelope.type, envelope.version)
    try:
        return schema.model_validate(envelope.payload)
    except ValidationError as exc:
        raise EventSchemaError(f"invalid {envelope.type} payload: {exc}") from exc
