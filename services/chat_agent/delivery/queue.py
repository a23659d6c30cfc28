"""The `deliveries` outbox: messages to a customer, queued in the caller's transaction.

A row is written in the same transaction as the state change that wants the message
sent, so a crash before commit sends nothing and a crash after it still sends; the
delivery loop (`delivery.loop`) sends it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.orm import Session

from services.chat_agent.models import Delivery
from shared.db import utcnow


def enqueue(
    session: Session,
    *,
    customer_id: str,
    line_user_id: str,
    kind: str,
    messages: list[dict[str, Any]],
    reply_token: str | None = None,
    reply_deadline: datetime | None = None,
    request_id: str | None = None,
    campaign_id: str | None = None,
    coupon_code: str | None = None,
    now: datetime | None = None,
    retry_key: uuid.UUID | None = None,
    not_before: datetime | None = None,
    status: str = "pending",
) -> Delivery:
    """Add a delivery to the caller's transaction (the outbox of chat messages).

    A drop push passes its own `retry_key` (derived from its request, so any retry of it
    is the same push to LINE), `not_before` (quiet hours, send_after) and may start
    "held" until its drop's rules are known (docs/interfaces.md § Campaign drops).
    """
    row = Delivery(
        delivery_id=uuid.uuid4(),
        customer_id=customer_id,
        line_user_id=line_user_id,
        kind=kind,
        messages=messages[:5],  # LINE takes at most five messages per call
        reply_token=reply_token,
        reply_deadline=reply_deadline if reply_token else None,
        retry_key=retry_key or uuid.uuid4(),
        status=status,
        attempts=0,
        reply_uncertain=False,
        next_attempt_at=not_before or now or utcnow(),
        created_at=now or utcnow(),
        request_id=request_id,
        campaign_id=campaign_id,
        coupon_code=coupon_code,
    )
    session.add(row)
    return row


def cancel_pending(session: Session, customer_id: str) -> int:
    """Cancel undelivered messages to a customer who unfollowed."""
    # An UPDATE's result is a CursorResult (it has a rowcount); execute() is typed wider.
    result = cast(
        "CursorResult[Any]",
        session.execute(
            update(Delivery)
            .where(Delivery.customer_id == customer_id, Delivery.status == "pending")
            .values(status="cancelled", last_error="customer unfollowed")
        ),
    )
    return int(result.rowcount or 0)
