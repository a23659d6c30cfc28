"""Topic names (docs/interfaces.md § Events), their dead-letter twins and partition counts."""

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

# Keyed by the customer (chat.inbound by the sender's pseudonym): the busy topics, whose
# partitions bound how many worker processes of one group share the load
# (docs/scaling.md). TENIN_TOPIC_PARTITIONS sets their count; every other topic (keyed
# by campaign or store, and every dead-letter topic) gets DEFAULT_PARTITIONS.
CUSTOMER_KEYED = frozenset(
    {CHAT_INBOUND, CUSTOMER_EVENTS, OFFER_REQUESTS, OFFER_DECISIONS, COUPON_EVENTS, SALES_EVENTS}
)
DEFAULT_PARTITIONS = 3
CUSTOMER_KEYED_PARTITIONS = 12


def partitions_of(topic: str, customer_keyed: int = CUSTOMER_KEYED_PARTITIONS) -> int:
    """How many partitions a topic should have, given the customer-keyed topics' count."""
    return customer_keyed if topic in CUSTOMER_KEYED else DEFAULT_PARTITIONS


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of a topic."""
    return f"{topic}.dlq"
