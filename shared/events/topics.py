"""Topic names (docs/interfaces.md § Events) and their dead-letter twins."""

from __future__ import annotations

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
