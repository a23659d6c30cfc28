"""`tenin model prune-logs`: delete (optionally archiving first) decision-log rows older than
the retention window (docs/learning.md § Retention; docs/architecture.md § Measurement).

What goes: `decisions` rows decided before `now - retention`, with their `coupons` and
`drop_members` rows, and `customer_sales` rows from before that cut-off (a kept decision only
ever counts sales after itself). What never goes: a decision whose outcome can still change,
i.e. whose coupon has not expired or whose spend window (the longest the loop uses,
`spend_window`) has not closed; a decision of a drop member while that drop may still send;
and a coupon whose campaign has not ended, since Redis's budget, caps and serials are rebuilt
from a live campaign's coupons (budget/seeding.py): such a coupon outlives its decision and
goes in the first run after its campaign ends. A drop member whose request never became a
decision (e.g. it was dead-lettered) goes once its drop has finished and was created before the
cut-off: nothing will decide it now. A drop's report reads its tallies, not its members, so
`drops` and `drop_tallies` stay. Rows go in batches, each archived first when
asked (a complete gzip CSV per table, synced to disk before the batch's delete commits), so a
crash loses nothing and a re-run carries on where it stopped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Select, delete, func, select
from sqlalchemy.orm import Session

from services.campaign_engine.modeling.log_archive import Archive
from services.campaign_engine.modeling.log_rules import (
    coupon_may_go,
    coupons_of,
    cutoff,
    ended_of,
    members_of,
    orphaned,
    orphaned_coupons,
    prunable,
    redemptions_of,
    undecided_members,
)
from services.campaign_engine.models import (
    Coupon,
    CustomerSale,
    Decision,
    DropMember,
    RedemptionSeen,
)
from shared.db import make_session_factory

RETENTION_ENV = "TENIN_DECISION_LOG_RETENTION_DAYS"
DEFAULT_BATCH = 5_000


@dataclass(frozen=True)
class Pruned:
    """What one run removed (or, with dry_run, would remove)."""

    cutoff: datetime
    decisions: int
    coupons: int
    redemptions: int
    drop_members: int
    sales: int
    batches: int
    archive_dir: Path | None


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
    """Delete decisions (with their coupons and drop members), the members of old finished
    drops never decided, and sales older than the retention window, in batches."""
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    before = cutoff(now, retention, spend_window)
    sessions = make_session_factory(engine)
    where = prunable(before, now)
    if dry_run:
        with sessions() as session:
            return _counted(session, where, before, now)
    archive = Archive(archive_dir, before)
    went: Counter[str] = Counter()
    while True:
        with sessions() as session, session.begin():
            rows = _batch(session, where, batch_size)
            if not rows:
                break
            batch = _delete_with_decisions(session, rows, now, archive)
        went.update(batch)
        say(
            f"batch {archive.batches}: {batch['decisions']} decisions, {batch['coupons']} coupons "
            f"({batch['redemptions']} redemptions) and {batch['drop_members']} drop members "
            f"deleted ({went['decisions']} decisions so far)"
        )
    batches = archive.batches
    orphans = _sweep_coupons(sessions, orphaned_coupons(now, before, batch_size), archive)
    went.update(orphans)
    say(f"{orphans['coupons']} coupons of ended campaigns, whose decisions went before, deleted")
    undecided = _sweep_members(sessions, undecided_members(before, batch_size), archive)
    went.update(drop_members=undecided)
    say(f"{undecided} drop members of finished drops, never decided, deleted")
    old_sales = select(CustomerSale).where(CustomerSale.occurred_at < before).limit(batch_size)
    sales = _sweep(sessions, old_sales, CustomerSale.transaction_id)
    say(f"{sales} sales before {before.isoformat()} deleted")
    return Pruned(
        before,
        went["decisions"],
        went["coupons"],
        went["redemptions"],
        went["drop_members"],
        sales,
        batches,
        archive_dir,
    )


def _counted(session: Session, where: Any, before: datetime, now: datetime) -> Pruned:
    """What a run would delete now (dry run): the same conditions, counted."""

    def count(query: Select[Any]) -> int:
        return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    members = select(DropMember.request_id).join(
        Decision, Decision.request_id == DropMember.request_id
    )
    with_decisions = (
        select(Coupon.code)
        .join(Decision, Decision.coupon_code == Coupon.code)
        .where(where, Decision.decision_id == Coupon.decision_id, coupon_may_go(now))
    )
    orphans = select(Coupon.code).where(coupon_may_go(now), orphaned(before))
    codes = with_decisions.union_all(orphans).subquery()
    redemptions = select(RedemptionSeen.coupon_code).join(
        codes, codes.c.code == RedemptionSeen.coupon_code
    )
    return Pruned(
        before,
        count(select(Decision.decision_id).where(where)),
        count(with_decisions) + count(orphans),
        count(redemptions),
        count(members.where(where)) + count(undecided_members(before)),
        count(select(CustomerSale.transaction_id).where(CustomerSale.occurred_at < before)),
        0,
        None,
    )


def _batch(session: Session, where: Any, batch_size: int) -> list[Decision]:
    query = select(Decision).where(where).order_by(Decision.decided_at).limit(batch_size)
    return list(session.scalars(query))


def _delete_with_decisions(
    session: Session, rows: list[Decision], now: datetime, archive: Archive
) -> Counter[str]:
    """Delete a batch of decisions with their drop members and those of their coupons that
    may go (with the coupons' redemptions), archived first when asked; how many of each."""
    ids = [r.decision_id for r in rows]
    codes = [r.coupon_code for r in rows if r.coupon_code is not None]
    coupons: list[Coupon] = []
    if codes:
        mine = set(ids)
        found = [c for c in session.scalars(coupons_of(codes, now)) if c.decision_id in mine]
        ended = ended_of(session, {c.campaign_id for c in found})
        coupons = [c for c in found if c.campaign_id in ended]
    seen = _redemptions_of(session, coupons)
    request_ids = [r.request_id for r in rows]
    members = list(session.scalars(members_of(request_ids)))
    archive.batch(
        (Decision, rows), (Coupon, coupons), (RedemptionSeen, seen), (DropMember, members)
    )
    _delete_coupons(session, coupons)
    if members:
        session.execute(delete(DropMember).where(DropMember.request_id.in_(request_ids)))
    session.execute(delete(Decision).where(Decision.decision_id.in_(ids)))
    return Counter(
        decisions=len(rows), coupons=len(coupons), redemptions=len(seen), drop_members=len(members)
    )


def _redemptions_of(session: Session, coupons: Sequence[Coupon]) -> list[RedemptionSeen]:
    if not coupons:
        return []
    return list(session.scalars(redemptions_of([c.code for c in coupons])))


def _delete_coupons(session: Session, coupons: Sequence[Coupon]) -> None:
    """Delete coupons with their recorded redemptions: every reader of a redemption (the
    budget rebuild, training, the forecast) reaches it through its coupon."""
    if not coupons:
        return
    codes = [c.code for c in coupons]
    session.execute(delete(RedemptionSeen).where(RedemptionSeen.coupon_code.in_(codes)))
    session.execute(delete(Coupon).where(Coupon.code.in_(codes)))


def _sweep_coupons(
    sessions: Callable[[], Session], query: Select[Coupon], archive: Archive
) -> Counter[str]:
    """Delete the coupons `query` finds, with their redemptions, a batch a transaction."""
    went: Counter[str] = Counter()
    while True:
        with sessions() as session, session.begin():
            coupons = list(session.scalars(query))
            if not coupons:
                return went
            seen = _redemptions_of(session, coupons)
            archive.batch((Coupon, coupons), (RedemptionSeen, seen))
            _delete_coupons(session, coupons)
        went.update(coupons=len(coupons), redemptions=len(seen))


def _sweep_members(
    sessions: Callable[[], Session], query: Select[DropMember], archive: Archive
) -> int:
    """Delete the drop members `query` finds, archived first, a batch a transaction."""
    total = 0
    while True:
        with sessions() as session, session.begin():
            members = list(session.scalars(query))
            if not members:
                return total
            archive.batch((DropMember, members))
            request_ids = [m.request_id for m in members]
            session.execute(delete(DropMember).where(DropMember.request_id.in_(request_ids)))
        total += len(members)


def _sweep(sessions: Callable[[], Session], query: Select[Any], key: Any) -> int:
    """Delete what `query` finds (rows of `key`'s table), a batch a transaction, until none."""
    model, total = key.class_, 0
    while True:
        with sessions() as session, session.begin():
            found = list(session.scalars(query))
            if not found:
                return total
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
    archived = done.archive_dir and (done.decisions or done.coupons or done.drop_members)
    print(
        f"{verb} {done.decisions} decisions, {done.coupons} coupons ({done.redemptions} "
        f"redemptions), {done.drop_members} drop members and {done.sales} sales before "
        f"{done.cutoff.isoformat()}" + (f" (archived in {done.archive_dir})" if archived else "")
    )
    return 0
