"""Claiming due deliveries (docs/interfaces.md § Campaign drops, docs/architecture.md §
Hot paths): which pending rows are due, conversation messages before a drop's pushes
(each through its own index), locked with SKIP LOCKED so senders never share a row, read as
plain columns, and leased so a sender that dies mid-call leaves them to come due again.
"""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy import ColumnElement, Text, literal_column, select, update
from sqlalchemy.orm import Session

from services.chat_agent.delivery.drop_rules import (
    DELIVERIES,
    DROP_KIND,
    defer_drop_pushes,
    with_drop_rules,
)
from services.chat_agent.delivery.outcomes import AnyRow, Claim
from shared.rows import any_of

# What a claim reads of a due row (Core rows: the ORM's objects and their change tracking
# cost more CPU per push than the push itself).
CLAIMED = (
    DELIVERIES.c.delivery_id,
    DELIVERIES.c.attempts,
    DELIVERIES.c.channel,
    DELIVERIES.c.reply_uncertain,
    DELIVERIES.c.line_user_id,
    DELIVERIES.c.reply_token,
    DELIVERIES.c.reply_deadline,
    # As text, parsed by orjson: psycopg's json.loads was ~15% of the loop's CPU.
    DELIVERIES.c.messages.cast(Text).label("messages"),
    DELIVERIES.c.retry_key,
    DELIVERIES.c.kind,
)


def due_rows(session: Session, now: datetime, *, drops: bool, limit: int) -> list[AnyRow]:
    """Up to `limit` pending deliveries due now, oldest due first: a drop's pushes or
    everything else (each through its own index), locked, skipping rows another
    sender holds."""
    if limit <= 0:
        return []
    # Literals, not parameters: so PostgreSQL matches the partial indexes (pending rows,
    # and of those not a drop's pushes: ix_deliveries_pending_due, _conversation_due) in
    # any plan, a generic one of a prepared statement included.
    drop_kind: ColumnElement[str] = literal_column(f"'{DROP_KIND}'")
    pending = DELIVERIES.c.status == literal_column("'pending'")
    kind = DELIVERIES.c.kind == drop_kind if drops else DELIVERIES.c.kind != drop_kind
    query = select(*CLAIMED)
    if drops:
        query = with_drop_rules(query)  # each push's rules, read with it
    return list(
        session.execute(
            query.where(pending, DELIVERIES.c.next_attempt_at <= now, kind)
            .order_by(DELIVERIES.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True, of=DELIVERIES)
        )
    )


def claim_due(session: Session, now: datetime, lease: datetime, batch_size: int) -> list[Claim]:
    """Up to `batch_size` due deliveries, leased until `lease`, as claims: conversation
    messages first, then a drop's pushes (those its rules hold back are deferred)."""
    claims: list[Claim] = []
    # Conversation first (replies whose token is running out, greetings, thanks),
    # then a drop's pushes: a reply must never wait behind a backlog of pushes.
    rows = due_rows(session, now, drops=False, limit=batch_size)
    pushes = due_rows(session, now, drops=True, limit=batch_size - len(rows))
    deferred = defer_drop_pushes(session, pushes, now)
    rows += pushes
    for row in rows:
        if row.delivery_id in deferred:
            continue
        fresh = bool(row.reply_token and row.reply_deadline and now < row.reply_deadline)
        claims.append(
            Claim(
                delivery_id=row.delivery_id,
                attempt=row.attempts + 1,
                channel="reply" if fresh and row.channel != "push" else "push",
                prior_uncertain=row.reply_uncertain,
                line_user_id=row.line_user_id,
                reply_token=row.reply_token,
                messages=orjson.loads(row.messages),
                retry_key=row.retry_key,
                kind=row.kind,
            )
        )
    # The lease: if this process dies mid-call the row comes due again. A reply's
    # outcome is uncertain until recorded (LINE may use the token and the answer
    # be lost).
    for channel in ("push", "reply"):
        ids = [c.delivery_id for c in claims if c.channel == channel]
        if ids:
            session.execute(
                update(DELIVERIES)
                .where(any_of(session, DELIVERIES.c.delivery_id, ids))
                .values(
                    attempts=DELIVERIES.c.attempts + 1,
                    channel=channel,
                    next_attempt_at=lease,
                    **({"reply_uncertain": True} if channel == "reply" else {}),
                )
            )
    return claims
