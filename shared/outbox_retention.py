"""Sent outbox rows are kept for `TENIN_OUTBOX_RETENTION_DAYS` (default 7), then deleted
(docs/architecture.md § Outbox retention).

An outbox row has done its work once the broker acknowledged it (shared/outbox_relay.py
marks it sent); it stays a while as the operator's record of what went out and when. Every
decision and every push adds rows, so without this the outboxes grew by ~2 rows a
follower of every drop, for ever.

The relay prunes between its rounds, a batch at a time (one short transaction each, by
the `sent_at` index): at most one batch a minute while the backlog is small, batch after
batch while it is not (a first start on a large table), so pruning never holds up
publishing for longer than one batch. Unsent rows are never touched; several processes
may prune one table at once (a row deleted by one is skipped by the other).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.db import utcnow
from shared.outbox import OutboxMixin

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult

log = structlog.get_logger(__name__)

PRUNE_BATCH = 5000
PRUNE_EVERY_S = 60.0


@dataclass
class OutboxPruner:
    """Deletes an outbox's rows sent more than `retention` ago, a batch when due."""

    sessions: Callable[[], Session]
    outbox_model: type[OutboxMixin]
    retention: timedelta
    clock: Callable[[], datetime] = utcnow
    batch_size: int = PRUNE_BATCH
    every_s: float = PRUNE_EVERY_S
    pruned: int = 0
    _due_at: float = field(default=0.0, init=False, repr=False)

    def maybe_prune(self) -> int:
        """Prune one batch if one is due; due again at once while batches come back full."""
        started = time.monotonic()
        if started < self._due_at:
            return 0
        deleted = self.prune_batch()
        self._due_at = started if deleted >= self.batch_size else started + self.every_s
        return deleted

    def prune_batch(self) -> int:
        """Delete up to `batch_size` of the oldest rows sent before the retention window."""
        model: Any = self.outbox_model
        before = self.clock() - self.retention
        oldest = (
            select(model.id)
            .where(model.sent_at.is_not(None), model.sent_at < before)
            .order_by(model.sent_at)
            .limit(self.batch_size)
        )
        with self.sessions() as session, session.begin():
            # A DELETE's result is a CursorResult (it has a rowcount); execute() is typed wider.
            result = cast(
                "CursorResult[Any]", session.execute(delete(model).where(model.id.in_(oldest)))
            )
            deleted = int(result.rowcount or 0)
        if deleted:
            self.pruned += deleted
            log.info(
                "outbox_pruned",
                table=f"{model.__table__.schema}.outbox",
                rows=deleted,
                sent_before=before.isoformat(),
            )
        return deleted


def outbox_pruner(
    sessions: Callable[[], Session],
    outbox_model: type[OutboxMixin],
    retention_days: float | None,
) -> OutboxPruner | None:
    """The pruner of a worker's outbox; None when retention is off (keep every row)."""
    if not retention_days or retention_days <= 0:
        return None
    return OutboxPruner(sessions, outbox_model, timedelta(days=retention_days))
