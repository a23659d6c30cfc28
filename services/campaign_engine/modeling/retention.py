"""`tenin model prune-logs`: delete (optionally archiving first) decision-log rows older than
the retention window (docs/learning.md § Retention; docs/architecture.md § Measurement).

What goes: `decisions` rows decided before `now - retention`, with their `coupons` and
`drop_members` rows, and `customer_sales` rows from before that cut-off (a kept decision only
ever counts sales after itself). What never goes: a decision whose outcome can still change,
i.e. whose coupon has not expired or whose spend window (the longest the loop uses,
`spend_window`) has not closed; a decision of a drop member while that drop may still send;
and a coupon whose campaign has not ended, since Redis's budget, caps and serials are rebuilt
from a live campaign's coupons (budget/seeding.py): such a coupon outlives its decision and
goes in the first run after its campaign ends. A drop's report reads its tallies, not its
members, so `drops` and `drop_tallies` stay. Rows go in batches, each archived first when
asked (a complete gzip CSV per table, synced to disk before the batch's delete commits), so a
crash loses nothing and a re-run carries on where it stopped.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Select, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from services.campaign_engine.models import (
    Campaign,
    Coupon,
    CustomerSale,
    Decision,
    Drop,
    DropMember,
)
from shared.db import Base, make_session_factory

RETENTION_ENV = "TENIN_DECISION_LOG_RETENTION_DAYS"
DEFAULT_BATCH = 5_000
FINISHED_DROPS = ("paged", "done", "cancelled", "failed")  # any other status may still send
ENDED_CAMPAIGN = "ended"  # final: the only status whose campaign never issues again


@dataclass(frozen=True)
class Pruned:
    """What one run removed (or, with dry_run, would remove)."""

    cutoff: datetime
    decisions: int
    coupons: int
    drop_members: int
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


def _coupon_may_go(now: datetime) -> Any:
    """Expired, and its campaign has ended (by the campaigns' status, coupons' campaign id)."""
    ended = select(Campaign.campaign_id).where(Campaign.status == ENDED_CAMPAIGN)
    return and_(Coupon.expires_at <= now, Coupon.campaign_id.in_(ended))


def _orphaned(before: datetime) -> Any:
    """Issued before the cut-off, its decision gone (while its campaign was still live)."""
    return and_(
        Coupon.issued_at < before, ~exists().where(Decision.decision_id == Coupon.decision_id)
    )


def coupons_of(codes: Sequence[str], now: datetime) -> Select[Coupon]:
    """A batch's expired coupons, by code: the primary key (a decision's coupon_code is its
    coupon's code), so the lookup never depends on how many coupons a campaign has."""
    return select(Coupon).where(Coupon.code.in_(codes), Coupon.expires_at <= now)


def _ended(session: Session, campaign_ids: set[str]) -> set[str]:
    ended = Campaign.campaign_id.in_(campaign_ids), Campaign.status == ENDED_CAMPAIGN
    return set(session.scalars(select(Campaign.campaign_id).where(*ended)))


def members_of(request_ids: Sequence[str]) -> Select[DropMember]:
    """A batch's drop members (by their unique request id)."""
    return select(DropMember).where(DropMember.request_id.in_(request_ids))


def orphaned_coupons(now: datetime, before: datetime, limit: int) -> Select[Coupon]:
    """Coupons that outlived their decisions while their campaign was live, now it has ended."""
    return select(Coupon).where(_coupon_may_go(now), _orphaned(before)).limit(limit)


def archive_batch(
    directory: Path, before: datetime, batch: int, rows: Sequence[Any], model: type[Base] = Decision
) -> Path:
    """Write one batch of one table as a complete gzip CSV (header first) and sync it to disk."""
    directory.mkdir(parents=True, exist_ok=True)
    columns = [c.key for c in model.__table__.columns]
    path = directory / f"{model.__tablename__}-before-{before:%Y%m%dT%H%M%SZ}-{batch:05d}.csv.gz"
    with open(path, "wb") as raw:
        with gzip.open(raw, "wt", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(_row(r, columns) for r in rows)
        raw.flush()
        os.fsync(raw.fileno())
    return path


@dataclass
class _Archive:
    """Numbers the batches of a run; with a directory, archives each batch's tables."""

    directory: Path | None
    before: datetime
    batches: int = 0

    def batch(self, *tables: tuple[type[Base], Sequence[Any]]) -> None:
        """Called before the batch's delete: its rows on disk first, a file per table."""
        self.batches += 1
        for model, rows in tables:
            if self.directory is not None and rows:
                archive_batch(self.directory, self.before, self.batches, rows, model)


def _row(row: Any, columns: list[str]) -> list[Any]:
    out = []
    for key in columns:
        value = getattr(row, key)
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
    """Delete decisions (with their coupons and drop members) and sales older than the
    retention window, in batches."""
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    before = cutoff(now, retention, spend_window)
    sessions = make_session_factory(engine)
    where = _prunable(before, now)
    if dry_run:
        with sessions() as session:
            return _counted(session, where, before, now)
    archive = _Archive(archive_dir, before)
    decisions, coupons, members = 0, 0, 0
    while True:
        with sessions() as session, session.begin():
            rows = _batch(session, where, batch_size)
            if not rows:
                break
            went = _delete_with_decisions(session, rows, now, archive)
        decisions, coupons, members = decisions + len(rows), coupons + went[0], members + went[1]
        say(
            f"batch {archive.batches}: {len(rows)} decisions, {went[0]} coupons and {went[1]} "
            f"drop members deleted ({decisions} decisions so far)"
        )
    batches = archive.batches
    orphans = _sweep(sessions, orphaned_coupons(now, before, batch_size), Coupon.code, archive)
    say(f"{orphans} coupons of ended campaigns, whose decisions went before, deleted")
    old_sales = select(CustomerSale).where(CustomerSale.occurred_at < before).limit(batch_size)
    sales = _sweep(sessions, old_sales, CustomerSale.transaction_id)
    say(f"{sales} sales before {before.isoformat()} deleted")
    return Pruned(before, decisions, coupons + orphans, members, sales, batches, archive_dir)


def _counted(session: Session, where: Any, before: datetime, now: datetime) -> Pruned:
    """What a run would delete now (dry run): the same conditions, counted."""
    decisions = session.scalar(select(func.count()).select_from(Decision).where(where))
    members = session.scalar(
        select(func.count())
        .select_from(DropMember)
        .join(Decision, Decision.request_id == DropMember.request_id)
        .where(where)
    )
    with_decisions = session.scalar(
        select(func.count())
        .select_from(Coupon)
        .join(Decision, Decision.coupon_code == Coupon.code)
        .where(where, Decision.decision_id == Coupon.decision_id, _coupon_may_go(now))
    )
    orphans = session.scalar(
        select(func.count()).select_from(Coupon).where(_coupon_may_go(now), _orphaned(before))
    )
    sales = session.scalar(
        select(func.count()).select_from(CustomerSale).where(CustomerSale.occurred_at < before)
    )
    coupons = int(with_decisions or 0) + int(orphans or 0)
    return Pruned(before, int(decisions or 0), coupons, int(members or 0), int(sales or 0), 0, None)


def _batch(session: Session, where: Any, batch_size: int) -> list[Decision]:
    query = select(Decision).where(where).order_by(Decision.decided_at).limit(batch_size)
    return list(session.scalars(query))


def _delete_with_decisions(
    session: Session, rows: list[Decision], now: datetime, archive: _Archive
) -> tuple[int, int]:
    """Delete a batch of decisions with their drop members and those of their coupons that
    may go, archived first when asked; (coupons, members) deleted."""
    ids = [r.decision_id for r in rows]
    codes = [r.coupon_code for r in rows if r.coupon_code is not None]
    coupons: list[Coupon] = []
    if codes:
        mine = set(ids)
        found = [c for c in session.scalars(coupons_of(codes, now)) if c.decision_id in mine]
        ended = _ended(session, {c.campaign_id for c in found})
        coupons = [c for c in found if c.campaign_id in ended]
    request_ids = [r.request_id for r in rows]
    members = list(session.scalars(members_of(request_ids)))
    archive.batch((Decision, rows), (Coupon, coupons), (DropMember, members))
    if coupons:
        session.execute(delete(Coupon).where(Coupon.code.in_([c.code for c in coupons])))
    if members:
        session.execute(delete(DropMember).where(DropMember.request_id.in_(request_ids)))
    session.execute(delete(Decision).where(Decision.decision_id.in_(ids)))
    return len(coupons), len(members)


def _sweep(
    sessions: Callable[[], Session], query: Select[Any], key: Any, archive: _Archive | None = None
) -> int:
    """Delete what `query` finds (rows of `key`'s table), a batch a transaction, until none."""
    model, total = key.class_, 0
    while True:
        with sessions() as session, session.begin():
            found = list(session.scalars(query))
            if not found:
                return total
            if archive is not None:
                archive.batch((model, found))
            session.execute(delete(model).where(key.in_([getattr(r, key.key) for r in found])))
            total += len(found)


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
    archived = done.archive_dir and (done.decisions or done.coupons)
    print(
        f"{verb} {done.decisions} decisions, {done.coupons} coupons, {done.drop_members} drop "
        f"members and {done.sales} sales before {done.cutoff.isoformat()}"
        + (f" (archived in {done.archive_dir})" if archived else "")
    )
    return 0
