"""`tenin model prune-logs`: delete (optionally archiving first) decision-log rows older than
the retention window (docs/learning.md § Retention; docs/architecture.md § Measurement).

What goes: `decisions` rows decided before `now - retention` and `customer_sales` rows from
before that cut-off (a kept decision only ever counts sales after itself). What never goes: a
decision whose outcome can still change, i.e. whose coupon has not expired or whose spend
window (the longest the loop uses, `spend_window`) has not closed; and a decision of a drop
member while that drop is still being sent (the drop counts its members' decisions). Rows go
in batches, each archived first when asked (one complete gzip CSV per batch, synced to disk
before its delete commits), so a crash loses nothing and a re-run carries on where it stopped.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from services.campaign_engine.models import CustomerSale, Decision, Drop, DropMember
from shared.db import make_session_factory

RETENTION_ENV = "TENIN_DECISION_LOG_RETENTION_DAYS"
DEFAULT_BATCH = 5_000
FINISHED_DROPS = ("paged", "done", "cancelled", "failed")  # any other status may still send
_COLUMNS = [c.key for c in Decision.__table__.columns]


@dataclass(frozen=True)
class Pruned:
    """What one run removed (or, with dry_run, would remove)."""

    cutoff: datetime
    decisions: int
    sales: int
    batches: int
    archive_dir: Path | None


def cutoff(now: datetime, retention: timedelta, spend_window: timedelta) -> datetime:
    """Decisions before this go: the retention window, never inside an outcome window."""
    if retention <= timedelta(0):
        raise ValueError("the retention window must be positive")
    return now - max(retention, spend_window)


def _prunable(before: datetime, now: datetime) -> Any:
    in_active_drop = exists(
        select(DropMember.request_id)
        .join(Drop, Drop.drop_id == DropMember.drop_id)
        .where(DropMember.request_id == Decision.request_id, Drop.status.not_in(FINISHED_DROPS))
    )
    return and_(
        Decision.decided_at < before,
        or_(Decision.expires_at.is_(None), Decision.expires_at <= now),
        ~in_active_drop,
    )


def archive_batch(directory: Path, before: datetime, batch: int, rows: list[Decision]) -> Path:
    """Write one batch as a complete gzip CSV (header first) and sync it to disk."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"decisions-before-{before:%Y%m%dT%H%M%SZ}-{batch:05d}.csv.gz"
    with open(path, "wb") as raw:
        with gzip.open(raw, "wt", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(_COLUMNS)
            writer.writerows(_row(r) for r in rows)
        raw.flush()
        os.fsync(raw.fileno())
    return path


def _row(decision: Decision) -> list[Any]:
    out = []
    for key in _COLUMNS:
        value = getattr(decision, key)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, list | dict):
            value = json.dumps(value, separators=(",", ":"))
        out.append(value)
    return out


def prune_decision_log(
    engine: Engine,
    *,
    now: datetime,
    retention: timedelta,
    spend_window: timedelta = timedelta(days=7),
    batch_size: int = DEFAULT_BATCH,
    archive_dir: Path | None = None,
    dry_run: bool = False,
    say: Callable[[str], None] = lambda _m: None,
) -> Pruned:
    """Delete decisions (and sales) older than the retention window, in batches."""
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    before = cutoff(now, retention, spend_window)
    sessions = make_session_factory(engine)
    where = _prunable(before, now)
    if dry_run:
        with sessions() as session:
            n = session.scalar(select(func.count()).select_from(Decision).where(where)) or 0
            sales = session.scalar(
                select(func.count())
                .select_from(CustomerSale)
                .where(CustomerSale.occurred_at < before)
            )
        return Pruned(before, int(n), int(sales or 0), 0, None)
    decisions, batches = 0, 0
    while True:
        with sessions() as session, session.begin():
            rows = _batch(session, where, batch_size)
            if not rows:
                break
            if archive_dir is not None:  # on disk before the delete commits
                archive_batch(archive_dir, before, batches + 1, rows)
            ids = [r.decision_id for r in rows]
            session.execute(delete(Decision).where(Decision.decision_id.in_(ids)))
        decisions += len(rows)
        batches += 1
        say(f"batch {batches}: {len(rows)} decisions deleted ({decisions} so far)")
    sales = _prune_sales(sessions, before, batch_size)
    say(f"{sales} sales before {before.isoformat()} deleted")
    return Pruned(before, decisions, sales, batches, archive_dir)


def _batch(session: Session, where: Any, batch_size: int) -> list[Decision]:
    query = select(Decision).where(where).order_by(Decision.decided_at).limit(batch_size)
    return list(session.scalars(query))


def _prune_sales(sessions: Callable[[], Session], before: datetime, batch_size: int) -> int:
    total = 0
    while True:
        with sessions() as session, session.begin():
            ids = session.scalars(
                select(CustomerSale.transaction_id)
                .where(CustomerSale.occurred_at < before)
                .limit(batch_size)
            ).all()
            if not ids:
                return total
            session.execute(delete(CustomerSale).where(CustomerSale.transaction_id.in_(ids)))
            total += len(ids)


def prune_logs_main(argv: list[str]) -> int:
    """Entry point of `tenin model prune-logs` (exit 0 done, 2 bad usage)."""
    import argparse

    from shared.config import Settings
    from shared.db import make_engine

    ap = argparse.ArgumentParser(prog="tenin model prune-logs", description=__doc__)
    ap.add_argument(
        "--days", type=float, default=None, help=f"retention (default: ${RETENTION_ENV})"
    )
    ap.add_argument("--archive", type=Path, default=None, help="write each batch as CSV here first")
    ap.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    ap.add_argument("--spend-window-days", type=float, default=7.0)
    ap.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    ap.add_argument("--database-url", default=None, help="default: DATABASE_URL")
    args = ap.parse_args(argv)
    settings = Settings.from_env()
    days = args.days if args.days is not None else settings.decision_log_retention_days
    if days is None:
        ap.error(f"give --days or set {RETENTION_ENV}")
    if days <= 0 or args.batch_size < 1:
        ap.error("--days and --batch-size must be positive")
    engine = make_engine(args.database_url or settings.effective_database_url, pool_size=1)
    try:
        done = prune_decision_log(
            engine,
            now=datetime.now(UTC),
            retention=timedelta(days=days),
            spend_window=timedelta(days=args.spend_window_days),
            batch_size=args.batch_size,
            archive_dir=args.archive,
            dry_run=args.dry_run,
            say=lambda msg: print(msg, flush=True),
        )
    finally:
        engine.dispose()
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{verb} {done.decisions} decisions and {done.sales} sales before "
        f"{done.cutoff.isoformat()}"
        + (f" (archived in {done.archive_dir})" if done.archive_dir and done.decisions else "")
    )
    return 0
