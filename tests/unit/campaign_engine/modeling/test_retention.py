"""`tenin model prune-logs`: old decision-log rows go (archived first when asked), in batches;
rows whose outcome can still change, or that a running drop still counts, stay."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from migrations.metadata import target_metadata
from services.campaign_engine.modeling.retention import prune_decision_log, prune_logs_main
from services.campaign_engine.modeling.simulated_log import simulated_log, write_log
from services.campaign_engine.models import CustomerSale, Decision, Drop, DropMember
from shared.db import make_engine, make_session_factory, unit_of_work

START = datetime(2026, 1, 1, tzinfo=UTC)
NOW = START + timedelta(days=200)
RETENTION = timedelta(days=120)  # the cut-off falls on day 80 of the log's 100


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'tenin.db'}")
    target_metadata.create_all(engine)
    with engine.begin() as conn:
        write_log(conn, simulated_log(1000, seed=3, start=START, span=timedelta(days=100)))
    return engine


def _ids(db: Engine) -> set[str]:
    with make_session_factory(db)() as session:
        return set(session.scalars(select(Decision.decision_id)))


def test_old_decisions_go_in_batches_and_the_archive_holds_exactly_them(
    db: Engine, tmp_path: Path
) -> None:
    before = _ids(db)
    done = prune_decision_log(
        db, now=NOW, retention=RETENTION, batch_size=150, archive_dir=tmp_path / "archive"
    )
    kept = _ids(db)
    assert done.cutoff == START + timedelta(days=80)
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
    for path in sorted((tmp_path / "archive").glob("*.csv.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert rows and "features" in rows[0] and rows[0]["features"].startswith("{")
        archived |= {r["decision_id"] for r in rows}
    assert archived == before - kept


def test_a_decision_whose_outcome_can_still_change_stays(db: Engine) -> None:
    with unit_of_work(make_session_factory(db)) as session:
        oldest = session.scalars(
            select(Decision).where(Decision.coupon_code.is_not(None)).order_by(Decision.decided_at)
        ).first()
        assert oldest is not None
        # A coupon valid for a year: its redemption may still come.
        oldest.expires_at = NOW + timedelta(days=1)
        keep = oldest.decision_id
    prune_decision_log(db, now=NOW, retention=RETENTION)
    assert keep in _ids(db)


def test_a_running_drops_decisions_stay_until_it_is_finished(db: Engine) -> None:
    sessions = make_session_factory(db)
    with unit_of_work(sessions) as session:
        first = session.scalars(select(Decision).order_by(Decision.decided_at)).first()
        assert first is not None
        session.add(Drop(drop_id="d1", campaign_id="c1", status="running"))
        session.add(
            DropMember(drop_id="d1", customer_id=first.customer_id, request_id=first.request_id)
        )
        member = first.decision_id
    prune_decision_log(db, now=NOW, retention=RETENTION)
    assert member in _ids(db)
    with unit_of_work(sessions) as session:
        session.execute(update(Drop).values(status="paged"))
    prune_decision_log(db, now=NOW, retention=RETENTION)
    assert member not in _ids(db)


def test_a_dry_run_counts_and_deletes_nothing(db: Engine) -> None:
    before = _ids(db)
    done = prune_decision_log(db, now=NOW, retention=RETENTION, dry_run=True)
    assert _ids(db) == before and 700 < done.decisions < 900


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
    assert "would delete 0 decisions" in capsys.readouterr().out
