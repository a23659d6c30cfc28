"""Tables a bulk job grows get fresh planner statistics as they grow
(shared/table_stats.py), on real PostgreSQL: analyzed when the rows added double, not on
every batch, and never an error for the caller."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from shared.db import make_engine, make_session_factory, unit_of_work
from shared.table_stats import GrowthAnalyzer

TABLE = "campaign_engine.drop_members"


def _add_members(sessions, n: int) -> None:  # type: ignore[no-untyped-def]
    drop = str(uuid.uuid4())
    with unit_of_work(sessions) as session:
        session.execute(
            text(
                f"INSERT INTO {TABLE} (drop_id, customer_id, request_id) "
                "SELECT CAST(:drop AS text), 'c_' || g, CAST(:drop AS text) || '-' || g "
                "FROM generate_series(1, :n) g"
            ),
            {"drop": drop, "n": n},
        )


def _planner_rows(sessions) -> float:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return float(
            session.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                {"t": TABLE},
            ).scalar_one()
        )


def test_tables_are_analyzed_each_time_the_rows_added_double(pg_url: str) -> None:
    sessions = make_session_factory(make_engine(pg_url, pool_size=1))
    analyzer = GrowthAnalyzer(sessions, [TABLE], first_at=100)
    before = _planner_rows(sessions)
    _add_members(sessions, 60)
    analyzer.added(60)
    assert analyzer.analyzed == 0  # below the first threshold
    _add_members(sessions, 60)
    analyzer.added(60)  # 120 >= 100: analyzed; the next at 240
    assert analyzer.analyzed == 1
    assert _planner_rows(sessions) >= before + 120  # the planner sees the new rows
    for _ in range(2):
        _add_members(sessions, 50)
        analyzer.added(50)  # 170, 220: not yet
    assert analyzer.analyzed == 1
    _add_members(sessions, 50)
    analyzer.added(50)  # 270 >= 240
    assert analyzer.analyzed == 2


def test_a_failing_analyze_is_logged_not_raised(pg_url: str) -> None:
    sessions = make_session_factory(make_engine(pg_url, pool_size=1))
    analyzer = GrowthAnalyzer(sessions, ["campaign_engine.no_such_table"], first_at=1)
    analyzer.added(5)  # does not raise
    assert analyzer.analyzed == 0
