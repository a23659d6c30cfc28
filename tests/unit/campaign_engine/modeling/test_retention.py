"""`tenin model prune-logs`: old decision-log rows go (archived first when asked), in batches,
with their coupons and drop members, and so do an old finished drop's members never decided;
rows whose outcome can still change, that a running drop still counts, or (coupons) that a live
campaign's budget is rebuilt from, stay."""

from __future__ import annotations

import csv
import gzip
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from migrations.metadata import target_metadata
from services.campaign_engine.modeling.log_rules import FINISHED_DROPS
from services.campaign_engine.modeling.retention import prune_decision_log, prune_logs_main
from services.campaign_engine.modeling.simulated_log import simulated_log, write_log
from services.campaign_engine.models import (
    Campaign,
    Coupon,
    CustomerSale,
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

START = datetime(2026, 1, 1, tzinfo=UTC)
NOW = START + timedelta(days=200)
RETENTION = timedelta(days=120)  # the cut-off falls on day 80 of the log's 100
CUTOFF = START + timedelta(days=80)  # every decision before it may go (coupons last 7 days)


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'tenin.db'}")
    target_metadata.create_all(engine)
    with engine.begin() as conn:
        write_log(conn, simulated_log(1000, seed=3, start=START, span=timedelta(days=100)))
    return engine


def _values(db: Engine, column: Any) -> set[str]:
    """Every value of a column of the engine's tables (the rows still there)."""
    with make_session_factory(db)() as session:
        return set(session.scalars(select(column)))


def _members(session: Session, decisions: Iterable[Decision], status: str) -> str:
    """A drop (in `status`) that asked each of the decisions' customers."""
    drop_id = str(uuid.uuid4())
    session.add(Drop(drop_id=drop_id, campaign_id="sim-campaign", status=status))
    for d in decisions:
        session.add(DropMember(drop_id=drop_id, customer_id=d.customer_id, request_id=d.request_id))
    return drop_id


def test_old_decisions_go_in_batches_and_the_archive_holds_exactly_them(
    db: Engine, tmp_path: Path
) -> None:
    before = _values(db, Decision.decision_id)
    done = prune_decision_log(
        db, now=NOW, retention=RETENTION, batch_size=150, archive_dir=tmp_path / "archive"
    )
    kept = _values(db, Decision.decision_id)
    assert done.cutoff == CUTOFF
    assert 700 < done.decisions < 900 and done.batches == -(-done.decisions // 150)
    assert len(kept) == len(before) - done.decisions
    with make_session_factory(db)() as session:
        oldest = session.scalar(select(func.min(Decision.decided_at)))
        early_sales = session.scalar(
            select(func.count())
            .select_from(CustomerSale)
            .where(CustomerSale.occurred_at < done.cutoff)
        )
    assert oldest is not None and oldest.replace(tzinfo=UTC) >= done.cutoff
    assert early_sales == 0 and done.sales > 0
    archived: set[str] = set()
    for path in sorted((tmp_path / "archive").glob("decisions-*.csv.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert rows and "features" in rows[0] and rows[0]["features"].startswith("{")
        archived |= {r["decision_id"] for r in rows}
    assert archived == before - kept


def test_the_coupons_and_drop_members_of_deleted_decisions_go_with_them(
    db: Engine, tmp_path: Path
) -> None:
    redeemed = _values(db, RedemptionSeen.coupon_code)
    with unit_of_work(make_session_factory(db)) as session:
        decisions = list(session.scalars(select(Decision)))
        codes = add_coupons(session, decisions, add_campaign(session, "ended"))
        _members(session, decisions, "paged")
        sent = {d.decision_id: d.coupon_code for d in decisions if d.coupon_code}
        requests = {d.decision_id: d.request_id for d in decisions}
    before = _values(db, Decision.decision_id)
    archive = tmp_path / "archive"
    done = prune_decision_log(db, now=NOW, retention=RETENTION, batch_size=150, archive_dir=archive)
    gone = before - _values(db, Decision.decision_id)
    gone_codes = {sent[i] for i in gone if i in sent}
    gone_requests = {requests[i] for i in gone}
    assert 700 < len(gone) < 900 and len(gone_codes) > 300
    # Those of the kept (recent) decisions stay.
    assert _values(db, Coupon.code) == codes - gone_codes and len(codes - gone_codes) > 50
    assert _values(db, DropMember.request_id) == set(requests.values()) - gone_requests
    # A coupon's recorded redemptions go with it, and only those.
    assert len(redeemed & gone_codes) > 20 and len(redeemed - gone_codes) > 5
    assert _values(db, RedemptionSeen.coupon_code) == redeemed - gone_codes
    assert (done.decisions, done.coupons, done.redemptions, done.drop_members) == (
        len(gone),
        len(gone_codes),
        len(redeemed & gone_codes),
        len(gone_requests),
    )
    assert archived(archive, "redemptions_seen", "coupon_code") == redeemed & gone_codes
    assert archived(archive, "decisions", "decision_id") == gone
    assert archived(archive, "coupons", "code") == gone_codes
    assert archived(archive, "coupons", "decision_id") == {i for i in gone if i in sent}
    assert archived(archive, "drop_members", "request_id") == gone_requests
    # One file per table per batch that lost rows, numbered as the batch.
    assert len(list(archive.glob("coupons-*-00001.csv.gz"))) == 1
    assert len(list(archive.glob("drop_members-*.csv.gz"))) == done.batches


def test_a_live_campaigns_coupons_outlive_their_decisions_until_it_ends(
    db: Engine, tmp_path: Path
) -> None:
    sessions = make_session_factory(db)
    with unit_of_work(sessions) as session:
        decisions = list(session.scalars(select(Decision)))
        live = add_campaign(session, "active")
        codes = add_coupons(session, decisions, live)
        sent = {d.decision_id: d.coupon_code for d in decisions if d.coupon_code}
    before = _values(db, Decision.decision_id)
    done = prune_decision_log(db, now=NOW, retention=RETENTION, batch_size=150)
    orphans = {sent[i] for i in before - _values(db, Decision.decision_id) if i in sent}
    # Its budget, caps and serials are rebuilt from them: they stay, the decisions go.
    assert done.decisions > 700 and len(orphans) > 300
    assert done.coupons == 0 and _values(db, Coupon.code) == codes
    redeemed = _values(db, RedemptionSeen.coupon_code)
    assert done.redemptions == 0 and len(redeemed & orphans) > 20
    with unit_of_work(sessions) as session:
        session.execute(update(Campaign).where(Campaign.campaign_id == live).values(status="ended"))
    counted = prune_decision_log(db, now=NOW, retention=RETENTION, dry_run=True)
    assert (counted.coupons, counted.redemptions) == (len(orphans), len(redeemed & orphans))
    assert _values(db, Coupon.code) == codes and _values(db, RedemptionSeen.coupon_code) == redeemed
    again = prune_decision_log(db, now=NOW, retention=RETENTION, archive_dir=tmp_path)
    assert (again.decisions, again.coupons) == (0, len(orphans))
    assert again.redemptions == len(redeemed & orphans)
    assert (
        _values(db, Coupon.code) == codes - orphans
        and _values(db, RedemptionSeen.coupon_code) == redeemed - orphans
    )
    assert archived(tmp_path, "coupons", "code") == orphans
    assert archived(tmp_path, "redemptions_seen", "coupon_code") == redeemed & orphans


def test_a_decision_whose_outcome_can_still_change_stays(db: Engine) -> None:
    with unit_of_work(make_session_factory(db)) as session:
        oldest = session.scalars(
            select(Decision).where(Decision.coupon_code.is_not(None)).order_by(Decision.decided_at)
        ).first()
        assert oldest is not None
        # A coupon valid for a year: its redemption may still come.
        oldest.expires_at = NOW + timedelta(days=1)
        keep = oldest.decision_id
        (code,) = add_coupons(session, [oldest], add_campaign(session, "ended"))
    prune_decision_log(db, now=NOW, retention=RETENTION)
    assert keep in _values(db, Decision.decision_id) and code in _values(db, Coupon.code)


def test_a_running_drops_decisions_stay_until_it_is_finished(db: Engine) -> None:
    sessions = make_session_factory(db)
    with unit_of_work(sessions) as session:
        first = session.scalars(select(Decision).order_by(Decision.decided_at)).first()
        assert first is not None
        drop_id = _members(session, [first], "running")
        member, request_id = first.decision_id, first.request_id
    prune_decision_log(db, now=NOW, retention=RETENTION)
    assert member in _values(db, Decision.decision_id) and _values(db, DropMember.request_id) == {
        request_id
    }
    with unit_of_work(sessions) as session:
        session.execute(update(Drop).where(Drop.drop_id == drop_id).values(status="paged"))
    done = prune_decision_log(db, now=NOW, retention=RETENTION)
    assert (
        member not in _values(db, Decision.decision_id)
        and _values(db, DropMember.request_id) == set()
    )
    assert (done.decisions, done.drop_members) == (1, 1)


def test_a_finished_old_drops_members_never_decided_go_and_the_archive_holds_them(
    db: Engine, tmp_path: Path
) -> None:
    old, recent = CUTOFF - timedelta(days=1), CUTOFF + timedelta(days=1)
    with unit_of_work(make_session_factory(db)) as session:
        decisions = list(session.scalars(select(Decision).order_by(Decision.decided_at)))
        first, last = decisions[0], decisions[-1]  # decided before the cut-off, and after it
        # 100 undecided members of an old drop in each finished status: they go.
        undecided: set[str] = set()
        for status in FINISHED_DROPS:
            drop_id = add_drop(session, "sim-campaign", status, old)
            undecided |= add_members(session, drop_id, never_decided(100))
        # An old finished drop's decided members go with their decision, or stay with it.
        done_id = add_drop(session, "sim-campaign", "done", old)
        add_members(session, done_id, [(d.customer_id, d.request_id) for d in (first, last)])
        # A drop that may still send, or a finished one created after the cut-off: they stay.
        stay = {last.request_id}
        for status, created in (("running", old), ("queued", old), ("paged", recent)):
            stay |= add_members(
                session, add_drop(session, "sim-campaign", status, created), never_decided(5)
            )
    counted = prune_decision_log(db, now=NOW, retention=RETENTION, batch_size=150, dry_run=True)
    assert _values(db, DropMember.request_id) == undecided | stay | {first.request_id}
    said: list[str] = []
    done = prune_decision_log(
        db, now=NOW, retention=RETENTION, batch_size=150, archive_dir=tmp_path, say=said.append
    )
    assert _values(db, DropMember.request_id) == stay
    assert done.drop_members == counted.drop_members == len(undecided) + 1 == 401
    assert "400 drop members of finished drops, never decided, deleted" in said
    assert archived(tmp_path, "drop_members", "request_id") == undecided | {first.request_id}
    # The first decision's batch, then the sweep's three of 150 members at most.
    assert len(list(tmp_path.glob("drop_members-*.csv.gz"))) == 1 + 3
    again = prune_decision_log(db, now=NOW, retention=RETENTION, batch_size=150)
    assert again.drop_members == 0 and _values(db, DropMember.request_id) == stay


def test_a_dry_run_counts_and_deletes_nothing(db: Engine) -> None:
    with unit_of_work(make_session_factory(db)) as session:
        decisions = list(session.scalars(select(Decision).order_by(Decision.decided_at)))
        # Half the coupons are a live campaign's, which keeps them; a third of the
        # decisions are a finished drop's members.
        ended = add_coupons(session, decisions[::2], add_campaign(session, "ended"))
        codes = ended | add_coupons(session, decisions[1::2], add_campaign(session, "paused"))
        members = {d.request_id for d in decisions[::3]}
        _members(session, decisions[::3], "cancelled")
        old = [d for d in decisions if d.decided_at < CUTOFF]
        old_codes, old_requests = {d.coupon_code for d in old}, {d.request_id for d in old}
    before = _values(db, Decision.decision_id)
    counted = prune_decision_log(db, now=NOW, retention=RETENTION, dry_run=True)
    assert _values(db, Decision.decision_id) == before and counted.decisions == 800
    assert _values(db, Coupon.code) == codes and _values(db, DropMember.request_id) == members
    done = prune_decision_log(db, now=NOW, retention=RETENTION)
    assert (done.coupons, done.drop_members) == (
        len(ended & old_codes),
        len(members & old_requests),
    )
    assert done.coupons > 300 and done.drop_members > 250 and done.sales > 0
    assert (counted.decisions, counted.coupons, counted.drop_members, counted.sales) == (
        done.decisions,
        done.coupons,
        done.drop_members,
        done.sales,
    )


def test_the_command_needs_a_window(
    db: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = str(db.url)
    monkeypatch.delenv("TENIN_DECISION_LOG_RETENTION_DAYS", raising=False)
    with pytest.raises(SystemExit) as exit_:
        prune_logs_main(["--database-url", url])
    assert exit_.value.code == 2
    assert "TENIN_DECISION_LOG_RETENTION_DAYS" in capsys.readouterr().err
    monkeypatch.setenv("TENIN_DECISION_LOG_RETENTION_DAYS", "100000")
    assert prune_logs_main(["--database-url", url, "--dry-run"]) == 0
    assert "would delete 0 decisions, 0 coupons (0 redemptions), 0 drop members and 0 sales" in (
        capsys.readouterr().out
    )
