"""Prometheus metrics of chat_agent (webhook, conversation and delivery)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOK_SECONDS = Histogram(
    "tenin_chat_webhook_seconds",
    "Time to acknowledge a LINE webhook call (signature, validation, durable publish).",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
)
WEBHOOK_EVENTS = Counter(
    "tenin_chat_webhook_events_total",
    "LINE webhook events by type and what the endpoint did with them.",
    ["type", "outcome"],
)
WEBHOOK_REJECTED = Counter(
    "tenin_chat_webhook_rejected_total", "Webhook calls refused, by reason.", ["reason"]
)
EVENTS_HANDLED = Counter(
    "tenin_chat_events_handled_total",
    "Inbound events handled by the worker, by type and outcome.",
    ["type", "outcome"],
)
INTENTS = Counter(
    "tenin_chat_intents_total", "Understood intents by language.", ["intent", "language"]
)
TURNS_PER_SESSION = Histogram(
    "tenin_chat_conversation_turns_per_session",
    "Conversation-turns per session (CPS), observed when a session ends.",
    buckets=(1, 2, 3, 5, 8, 13, 23, 34, 55, 100),
)
DELIVERIES = Counter(
    "tenin_chat_deliveries_total",
    "Delivery attempts by message kind and outcome.",
    ["kind", "outcome"],
)
LINE_API_SECONDS = Histogram(
    "tenin_chat_line_api_seconds", "LINE Messaging API call time by channel.", ["channel"]
)
OFFERS = Counter(
    "tenin_chat_offers_total",
    "Offer requests and decisions seen, by stage and arm.",
    ["stage", "arm"],
)
LINKS = Counter(
    "tenin_chat_account_links_total",
    "Account-link steps by stage (token, nonce, account_link) and outcome.",
    ["stage", "outcome"],
)
