"""The `deliveries` outbox: messages to a customer, queued in the caller's transaction.

A row is written in the same transaction as the state change that wants the message
sent, so a crash before commit sends nothing and a crash after it still sends; the
delivery loop (`delivery.loop`) sends it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Required, TypedDict, Unpack, cast

from sqlalchemy import CursorResult, Table, text, update
from sqlalchemy.orm import Session

from services.chat_agent.models import FINISHED_WHERE, Delivery, DropPush
from shared.db import utcnow
from shared.ids import random_uuid
from shared.retention import Aged, Dependent


class DeliveryFields(TypedDict, total=False):
    """What a caller says of a delivery (the rest is the queue's)."""

    customer_id: Required[str]
    line_user_id: Required[str]
    kind: Required[str]
    messages: Required[list[dict[str, Any]]]
    reply_token: str | None
    reply_deadline: datetime | None
    request_id: str | None
    campaign_id: str | None
    coupon_code: str | None
    now: datetime | None
    retry_key: uuid.UUID | None
    not_before: datetime | None
    status: str


# What retention deletes (shared/retention.py, TENIN_DELIVERY_RETENTION_DAYS): rows that
# will not be attempted again, oldest first by the partial index of their creation time,
# each with its `drop_pushes` row (a drop's one push to the customer, by its unique
# delivery id), which guards nothing once the push is finished and that old
# (docs/architecture.md § Retention).
FINISHED = Aged.of(
    Delivery,
    "created_at",
    only=text(FINISHED_WHERE),
    dependents=(
        Dependent(
            cast(Table, DropPush.__table__).c.delivery_id,
            cast(Table, Delivery.__table__).c.delivery_id,
        ),
    ),
)

# The columns `delivery_row` gives, for a one-statement INSERT of many (shared/rows.py).
DELIVERY_COLUMNS = (
    "delivery_id",
    "customer_id",
    "line_user_id",
    "kind",
    "messages",
    "reply_token",
    "reply_deadline",
    "retry_key",
    "status",
    "attempts",
    "reply_uncertain",
    "next_attempt_at",
    "created_at",
    "request_id",
    "campaign_id",
    "coupon_code",
)


def enqueue(session: Session, **fields: Unpack[DeliveryFields]) -> Delivery:
    """Add a delivery to the caller's transaction (the outbox of chat messages)."""
    row = Delivery(**delivery_row(**fields))
    session.add(row)
    return row


def delivery_row(**fields: Unpack[DeliveryFields]) -> dict[str, Any]:
    """A delivery's columns (for `enqueue`, or for one multi-row INSERT of many).

    A drop push passes its own `retry_key` (derived from its request, so any retry of it
    is the same push to LINE), `not_before` (quiet hours, send_after) and may start
    "held" until its drop's rules are known (docs/interfaces.md § Campaign drops).
    """
    now, reply_token = fields.get("now") or utcnow(), fields.get("reply_token")
    return {
        "delivery_id": random_uuid(),
        "customer_id": fields["customer_id"],
        "line_user_id": fields["line_user_id"],
        "kind": fields["kind"],
        "messages": fields["messages"][:5],  # LINE takes at most five messages per call
        "reply_token": reply_token,
        "reply_deadline": fields.get("reply_deadline") if reply_token else None,
        "retry_key": fields.get("retry_key") or random_uuid(),
        "status": fields.get("status", "pending"),
        "attempts": 0,
        "reply_uncertain": False,
        "next_attempt_at": fields.get("not_before") or now,
        "created_at": now,
        "request_id": fields.get("request_id"),
        "campaign_id": fields.get("campaign_id"),
        "coupon_code": fields.get("coupon_code"),
    }


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
