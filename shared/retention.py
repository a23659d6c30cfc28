"""Rows that have done their work are deleted once they are older than a retention window
(docs/architecture.md § Retention).

Two kinds in every service schema, and a service's own (chat_agent's finished
deliveries, `TENIN_DELIVERY_RETENTION_DAYS`, default 30: they hold LINE user ids and
message texts, personal data kept no longer than needed; and its offer requests,
`TENIN_OFFER_REQUEST_RETENTION_DAYS`, default 100):

* sent outbox rows, kept `TENIN_OUTBOX_RETENTION_DAYS` (default 7) after the broker
  acknowledged them, as the operator's record of what went out and when;
* processed-event records (shared/idempotency.py), kept
  `TENIN_PROCESSED_EVENTS_RETENTION_DAYS` (default 15) after the event was applied: they
  are the consumers' defence against redelivery, so the window must outlast the longest
  a record can stay on the topics the service consumes (`outlasts_topics`: Kafka's
  defaults keep one up to 14 days, 7 of retention plus up to 7 until its segment closes);
  when the broker says the window does not, every record is kept, with an error in the log.

Every decision and every push adds rows of both, so without this they grew by a few rows
a follower of every drop, for ever. A worker's relay prunes between its rounds, a batch
at a time (one short transaction each, oldest first by the age column's index): at most
one batch a minute while the backlog is small, batch after batch while it is not (a first
start on a large table), so pruning never holds up publishing for longer than one batch.
A row without an age (an unsent outbox row) is never touched; several processes may prune
one table at once (a row deleted by one is skipped by the other). Rows of another table that
only serve a pruned row (a `Dependent`: chat_agent's `drop_pushes` of a delivery) go in the
same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    Table,
    TextClause,
    and_,
    delete,
    select,
    tuple_,
)
from sqlalchemy.orm import Session

from shared.bus import TopicConfigsUnknown
from shared.db import utcnow
from shared.rows import any_of

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult

    from shared.bus import Broker

log = structlog.get_logger(__name__)

PRUNE_BATCH = 5000
PRUNE_EVERY_S = 60.0


@dataclass(frozen=True)
class Dependent:
    """Rows that go with a pruned row: those whose `column` (indexed) holds the pruned row's
    `refers_to` value."""

    column: Column[Any]
    refers_to: Column[Any]


@dataclass(frozen=True)
class Aged:
    """What a pruner deletes: rows of `table` whose `age` column (indexed) is older than the
    window and that match `only` (if given), each row named by its `key` columns, with their
    `dependents`. A row whose age is NULL never goes."""

    table: Table
    age: Column[Any]
    key: tuple[Column[Any], ...]
    only: ColumnElement[bool] | TextClause | None = None
    dependents: tuple[Dependent, ...] = ()

    @classmethod
    def of(
        cls,
        model: type[Any],
        age: str,
        only: ColumnElement[bool] | TextClause | None = None,
        dependents: tuple[Dependent, ...] = (),
    ) -> Aged:
        table = cast(Table, model.__table__)
        return cls(table, table.c[age], tuple(table.primary_key.columns), only, dependents)

    @property
    def name(self) -> str:
        return f"{self.table.schema}.{self.table.name}"


@dataclass
class Pruner:
    """Deletes a table's rows older than `retention`, a batch when due."""

    sessions: Callable[[], Session]
    aged: Aged
    retention: timedelta
    clock: Callable[[], datetime] = utcnow
    batch_size: int = PRUNE_BATCH
    every_s: float = PRUNE_EVERY_S
    # Asked before the first batch until it answers: False keeps every row (the pruner
    # stays off), None asks again when the next batch is due.
    allowed: Callable[[], bool | None] | None = None
    pruned: int = 0
    off: bool = False
    _due_at: float = field(default=0.0, init=False, repr=False)

    def maybe_prune(self) -> int:
        """Prune one batch if one is due; due again at once while batches come back full."""
        started = time.monotonic()
        if self.off or started < self._due_at:
            return 0
        if self.allowed is not None:
            verdict = self.allowed()
            if verdict is None:
                self._due_at = started + self.every_s
                return 0
            self.off, self.allowed = not verdict, None
            if self.off:
                return 0
        deleted = self.prune_batch()
        self._due_at = started if deleted >= self.batch_size else started + self.every_s
        return deleted

    def oldest(self, before: datetime) -> Select[Any]:
        """The keys of the batch's rows: the oldest from before `before` (by the age index)."""
        aged = self.aged
        old = aged.age < before if aged.only is None else and_(aged.age < before, aged.only)
        return select(*aged.key).where(old).order_by(aged.age).limit(self.batch_size)

    def prune_batch(self) -> int:
        """Delete up to `batch_size` of the oldest rows from before the retention window,
        and their dependents, in one transaction."""
        aged, before = self.aged, self.clock() - self.retention
        oldest = self.oldest(before)
        doomed = tuple_(*aged.key).in_(oldest) if len(aged.key) > 1 else aged.key[0].in_(oldest)
        dependents: dict[str, int] = {}
        with self.sessions() as session, session.begin():
            if aged.dependents:
                deleted, dependents = _delete_with_dependents(session, aged, doomed)
            else:
                # A DELETE's result is a CursorResult (it has a rowcount); execute() is typed
                # wider.
                result = cast(
                    "CursorResult[Any]", session.execute(delete(aged.table).where(doomed))
                )
                deleted = int(result.rowcount or 0)
        if deleted:
            self.pruned += deleted
            log.info(
                "rows_pruned",
                table=aged.name,
                rows=deleted,
                before=before.isoformat(),
                **({"dependents": dependents} if dependents else {}),
            )
        return deleted


def _delete_with_dependents(
    session: Session, aged: Aged, doomed: ColumnElement[bool]
) -> tuple[int, dict[str, int]]:
    """Delete the doomed rows, then the rows that depend on them: how many of each."""
    referred = list(dict.fromkeys(d.refers_to for d in aged.dependents))
    gone = session.execute(delete(aged.table).where(doomed).returning(*referred)).all()
    counts: dict[str, int] = {}
    for dependent in aged.dependents:
        at = referred.index(dependent.refers_to)
        values = [row[at] for row in gone if row[at] is not None]
        if not values:
            continue
        table = cast(Table, dependent.column.table)
        result = cast(
            "CursorResult[Any]",
            session.execute(delete(table).where(any_of(session, dependent.column, values))),
        )
        name = f"{table.schema}.{table.name}"
        counts[name] = counts.get(name, 0) + int(result.rowcount or 0)
    return len(gone), counts


def prune_quietly(pruners: Sequence[Pruner]) -> None:
    """A batch of each table's old rows, where one is due; a failure is logged and left for
    the next time (the caller, a relay, goes on publishing)."""
    for pruner in pruners:
        try:
            pruner.maybe_prune()
        except Exception:
            log.exception("prune_failed", table=pruner.aged.name)


def pruner(
    sessions: Callable[[], Session],
    aged: Aged,
    retention_days: float | None,
    allowed: Callable[[], bool | None] | None = None,
) -> Pruner | None:
    """A pruner of `aged` rows older than `retention_days` (once `allowed` says so);
    None when retention is off."""
    if not retention_days or retention_days <= 0:
        return None
    return Pruner(sessions, aged, timedelta(days=retention_days), allowed=allowed)


def outlasts_topics(
    broker: Broker, topics: Sequence[str], days: float
) -> Callable[[], bool | None]:
    """Whether records of applied events kept `days` outlast every record of `topics`: if
    one could come back after its record went (a consumer group whose offsets expired
    starts again from the earliest record), it would be applied twice. When the broker
    keeps a topic's records as long or longer, the answer is no, with an error in the log;
    when it cannot tell (Tansu), yes, with a warning; when it does not answer now, None
    (ask again later)."""
    window_ms = days * 86_400_000

    def check() -> bool | None:
        try:
            lifetimes = broker.record_lifetime_ms(topics)
        except TopicConfigsUnknown as exc:
            log.warning(
                "topic_lifetime_unknown", broker=broker.name, error=str(exc), window_days=days
            )
            return True
        except Exception as exc:
            log.warning("topic_lifetime_not_read", broker=broker.name, error=type(exc).__name__)
            return None
        longer = {t: ms for t, ms in lifetimes.items() if ms is None or ms >= window_ms}
        if longer:
            log.error(
                "processed_events_window_too_short",
                window_days=days,
                topics={
                    t: "for ever" if ms is None else ms / 86_400_000 for t, ms in longer.items()
                },
                kept="every processed-event record",
                setting="TENIN_PROCESSED_EVENTS_RETENTION_DAYS",
            )
        return not longer

    return check
