"""`tenin model prune-logs` on real PostgreSQL: the batches, the archive and what stays; the
coupons and drop members of deleted decisions go with them, and an old finished drop's members
never decided go after them, all found by their indexes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select, select, text, update

from services.campaign_engine.modeling.log_rules import (
    FINISHED_DROPS,
    coupons_of,
    members_of,
    orphaned_coupons,
    redemptions_of,
    undecided_members,
)
from services.campaign_engine.modeling.retention import prune_decision_log
from services.campaign_engine.modeling.simulated_log import simulated_log, write_log
from services.campaign_engine.models import (
    Campaign,
    Coupon,
    Decision,
    Drop,
    DropMember,
    RedemptionSeen,
)
from shared.db import make_engine, make_session_factory, unit_of_work
from tests.support.decision_log_rows import (
    add_campaign,
    add_coupons,
    add_drop,
    add_members,
    archived,
    never_decided,
)

# Long before anything else the session's database holds: the cut-off touches only these rows.
START = datetime(2001, 1, 1, tzinfo=UTC)
NOW = START + timedelta(days=200)
RETENTION = timedelta(days=120)


def test_prune_on_postgres(pg_url: str, tmp_path: Path) -> None:
    db = make_engine(pg_url, pool_size=1)
    sessions = make_session_factory(db)
    try:
        log = simulated_log(600, seed=17, start=START, span=timedelta(days=100))
        with db.begin() as conn:
            write_log(conn, log)
        decisions = log.decisions
        mine = {d["decision_id"] for d in decisions}
        with unit_of_work(sessions) as session:
            # Even decisions' coupons are an ended campaign's, odd ones a live campaign's.
            ended = add_coupons(session, decisions[::2], add_campaign(session, "ended"))
            live_id = add_campaign(session, "active")
            live = add_coupons(session, decisions[1::2], live_id)
            drop_id = str(uuid.uuid4())
            session.add(Drop(drop_id=drop_id, campaign_id=live_id, status="paged"))
            session.add_all(
                DropMember(
                    drop_id=drop_id, customer_id=d["customer_id"], request_id=d["request_id"]
                )
                for d in decisions
            )
        counted = prune_decision_log(db, now=NOW, retention=RETENTION, dry_run=True)
        done = prune_decision_log(
            db, now=NOW, retention=RETENTION, batch_size=100, archive_dir=tmp_path
        )
        with sessions() as session:
            left = set(
                session.scalars(select(Decision.decision_id).where(Decision.decision_id.in_(mine)))
            )
            codes = set(session.scalars(select(Coupon.code).where(Coupon.code.in_(ended | live))))
            members = set(
                session.scalars(select(DropMember.request_id).where(DropMember.drop_id == drop_id))
            )
        gone = mine - left
        gone_codes = {d["coupon_code"] for d in decisions if d["decision_id"] in gone}
        gone_requests = {d["request_id"] for d in decisions if d["decision_id"] in gone}
        assert done.decisions == len(gone) and 400 < len(gone) < 560
        assert all(d["decided_at"] >= done.cutoff for d in decisions if d["decision_id"] in left)
        assert archived(tmp_path, "decisions", "decision_id") == gone
        # The ended campaign's coupons of deleted decisions go; the live campaign's stay.
        assert codes == (ended - gone_codes) | live and len(ended & gone_codes) > 150
        assert done.coupons == len(ended & gone_codes)
        assert archived(tmp_path, "coupons", "code") == ended & gone_codes
        assert members == {d["request_id"] for d in decisions} - gone_requests
        assert done.drop_members == len(gone_requests)
        assert archived(tmp_path, "drop_members", "request_id") == gone_requests
        # A coupon's recorded redemptions go with it.
        redeemed = {r["coupon_code"] for r in log.redemptions}
        with sessions() as session:
            seen = set(
                session.scalars(
                    select(RedemptionSeen.coupon_code).where(
                        RedemptionSeen.coupon_code.in_(ended | live)
                    )
                )
            )
        assert seen == (redeemed & (ended | live)) - (ended & gone_codes)
        assert done.redemptions == len(redeemed & ended & gone_codes) > 10
        assert (
            archived(tmp_path, "redemptions_seen", "coupon_code") == redeemed & ended & gone_codes
        )
        assert (
            counted.decisions,
            counted.coupons,
            counted.redemptions,
            counted.drop_members,
        ) == (done.decisions, done.coupons, done.redemptions, done.drop_members)
        # Once the live campaign ends, the next run deletes its coupons the decisions left.
        with unit_of_work(sessions) as session:
            session.execute(
                update(Campaign).where(Campaign.campaign_id == live_id).values(status="ended")
            )
        again = prune_decision_log(db, now=NOW, retention=RETENTION, archive_dir=tmp_path / "2")
        with sessions() as session:
            codes = set(session.scalars(select(Coupon.code).where(Coupon.code.in_(ended | live))))
        assert again.decisions == 0 and again.coupons == len(live & gone_codes) > 150
        assert again.redemptions == len(redeemed & live & gone_codes) > 10
        assert codes == (ended | live) - gone_codes
        assert archived(tmp_path / "2", "coupons", "code") == live & gone_codes
    finally:
        db.dispose()


def test_an_old_finished_drops_members_never_decided_go_on_postgres(
    pg_url: str, tmp_path: Path
) -> None:
    db = make_engine(pg_url, pool_size=1)
    sessions = make_session_factory(db)
    try:
        log = simulated_log(20, seed=43, start=START, span=timedelta(days=100))
        with db.begin() as conn:
            write_log(conn, log)
        first, last = log.decisions[0], log.decisions[-1]  # before the cut-off, and after it
        with unit_of_work(sessions) as session:
            campaign_id = add_campaign(session, "ended")
            # 60 undecided members of an old drop in each finished status: they go.
            undecided: set[str] = set()
            for status in FINISHED_DROPS:
                drop_id = add_drop(session, campaign_id, status, START)
                undecided |= add_members(session, drop_id, never_decided(60))
            # Decided members go with their decision, or stay with it.
            drop_id = add_drop(session, campaign_id, "done", START)
            add_members(
                session, drop_id, [(d["customer_id"], d["request_id"]) for d in (first, last)]
            )
            # A drop that may still send, or a finished one created after the cut-off: they stay.
            stay = {last["request_id"]}
            for status, created in (("running", START), ("paged", NOW - timedelta(days=1))):
                drop_id = add_drop(session, campaign_id, status, created)
                stay |= add_members(session, drop_id, never_decided(5))
        counted = prune_decision_log(db, now=NOW, retention=RETENTION, dry_run=True)
        done = prune_decision_log(
            db, now=NOW, retention=RETENTION, batch_size=100, archive_dir=tmp_path
        )
        gone = undecided | {first["request_id"]}
        with sessions() as session:
            left = set(
                session.scalars(
                    select(DropMember.request_id).where(DropMember.request_id.in_(gone | stay))
                )
            )
        assert left == stay
        assert done.drop_members == counted.drop_members == len(gone) == 241
        assert archived(tmp_path, "drop_members", "request_id") == gone
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (coupons_of(["SIM17-1", "SIM17-3"], NOW), "pk_coupons"),
        (members_of(["req-17-1", "req-17-3"]), "uq_drop_members_request_id"),
        (orphaned_coupons(NOW, NOW - RETENTION, 100), "ix_campaign_engine_coupons_campaign_id"),
        (redemptions_of(["SIM17-1", "SIM17-3"]), "pk_redemptions_seen"),
        (undecided_members(NOW - RETENTION, 100), "uq_decisions_request_id"),
    ],
    ids=["coupons", "drop_members", "orphaned_coupons", "redemptions", "undecided_members"],
)
def test_each_batch_finds_its_rows_by_an_index(pg_url: str, query: Select[Any], index: str) -> None:
    """A batch's coupons, their redemptions and drop members, and whether a drop member was
    decided, are looked up among millions: by an index, never by a scan of the table (no
    migration was needed for that)."""
    sessions = make_session_factory(make_engine(pg_url))
    with sessions() as session:
        session.execute(text("SET LOCAL enable_seqscan = off"))  # tiny tables: force the choice
        sql = query.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        plan = "\n".join(session.scalars(text(f"EXPLAIN {sql}")))
    assert index in plan, plan
