"""`tenin model prune-logs` on real PostgreSQL: the batches, the archive and what stays."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from services.campaign_engine.modeling.retention import prune_decision_log
from services.campaign_engine.modeling.simulated_log import simulated_log, write_log
from services.campaign_engine.models import Decision
from shared.db import make_engine, make_session_factory

# Long before anything else the session's database holds: the cut-off touches only these rows.
START = datetime(2001, 1, 1, tzinfo=UTC)
NOW = START + timedelta(days=200)


def test_prune_on_postgres(pg_url: str, tmp_path: Path) -> None:
    db = make_engine(pg_url, pool_size=1)
    try:
        log = simulated_log(600, seed=17, start=START, span=timedelta(days=100))
        with db.begin() as conn:
            write_log(conn, log)
        mine = {d["decision_id"] for d in log.decisions}
        done = prune_decision_log(
            db,
            now=NOW,
            retention=timedelta(days=120),
            batch_size=100,
            archive_dir=tmp_path,
        )
        with make_session_factory(db)() as session:
            left = set(
                session.scalars(select(Decision.decision_id).where(Decision.decision_id.in_(mine)))
            )
        gone = mine - left
        assert done.decisions == len(gone) and 400 < len(gone) < 560
        assert all(
            d["decided_at"] >= done.cutoff for d in log.decisions if d["decision_id"] in left
        )
        archived = set()
        for path in tmp_path.glob("*.csv.gz"):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                archived |= {r["decision_id"] for r in csv.DictReader(handle)}
        assert archived == gone
    finally:
        db.dispose()
