"""Asking the campaign engine for an offer: the request row and `offer.requested`.

A deals request or a first greeting while a campaign runs publishes `offer.requested`
and sends nothing yet: the reply token is kept with the request, so the decision can go
out by the (free) reply API if it arrives while the token is fresh, and by push after.
A follow greeting waits with the request until `hold_until`; then it goes alone
(`offers.held_greetings`) and the offer follows by push when it comes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from services.chat_agent import metrics
from services.chat_agent.line import messages
from services.chat_agent.models import PRODUCER, OfferRequest, Outbox
from shared.db import utcnow
from shared.events import Language, OfferContext, OfferRequested
from shared.outbox import add_event
from shared.retention import Aged
from shared.rows import RowWriter

# The request in one prepared statement (shared/rows.py): a customer waits on this path.
REQUEST_COLUMNS = (
    "request_id",
    "customer_id",
    "trigger",
    "language",
    "reply_token",
    "reply_deadline",
    "hold_until",
    "lead_messages",
    "status",
    "created_at",
)
REQUEST_ROWS = RowWriter(cast(Table, OfferRequest.__table__), REQUEST_COLUMNS)

# What retention deletes (shared/retention.py, TENIN_OFFER_REQUEST_RETENTION_DAYS, 100):
# requests of any status, oldest first. A decided one is read for seconds, but the thank-you
# for its coupon reads it until the coupon can no longer be redeemed (offers.thanks).
ASKED = Aged.of(OfferRequest, "created_at")


def request_offer(
    session: Session,
    *,
    event_id: uuid.UUID,
    customer_id: str,
    trigger: str,
    intent: str,
    language: Language,
    mood: float,
    asked_at: datetime,
    reply_token: str | None,
    reply_deadline: datetime,
    hold_until: datetime | None = None,
    lead: list[str] | None = None,
) -> str:
    """Record the request (with the reply token) and publish `offer.requested`.

    `event_id` is the LINE event that asked (the request id derives from it, so a
    redelivery asks once); `lead` are persona lines held back until `hold_until` to go
    out together with the offer. Returns the request's id.
    """
    request_id = f"rq-{uuid.uuid5(event_id, 'offer.requested')}"
    local = asked_at.astimezone(messages.STORE_TZ)
    request = {
        "request_id": request_id,
        "customer_id": customer_id,
        "trigger": trigger,
        "language": language,
        "reply_token": reply_token,
        "reply_deadline": reply_deadline if reply_token else None,
        "hold_until": hold_until if lead else None,
        "lead_messages": [messages.text(line) for line in lead] if lead else None,
        "status": "pending",
        "created_at": utcnow(),
    }
    REQUEST_ROWS.write(session.connection(), [request])
    context = OfferContext(
        intent=intent,
        sentiment=max(-1.0, min(1.0, mood)),
        language=language,
        local_hour=local.hour,
        weekday=local.weekday(),
    )
    add_event(
        session,
        Outbox,
        "offer.requested",
        OfferRequested(request_id=request_id, customer_id=customer_id, context=context),
        key=customer_id,
        producer=PRODUCER,
    )
    metrics.OFFERS.labels("requested", trigger).inc()
    return request_id
