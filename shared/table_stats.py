"""Fresh planner statistics for tables a bulk job grows from (nearly) empty.

PostgreSQL plans with the statistics of a table's last ANALYZE, and autovacuum analyzes a
table once a tenth of it changed, looking once a minute. A campaign drop fills
`drop_members`, `decisions`, `deliveries` and `drop_pushes` with 100,000 rows in about a
minute, so its statements could run on the statistics of an empty table: sequential scans
where the primary key serves, 45–280 ms a statement, and a drop whose PostgreSQL CPU swung
between ~30 and ~80 s from one run to the next (bench/drop.py; docs/scaling.md).

`GrowthAnalyzer` counts the rows this process added to its tables and ANALYZEs them each
time that count doubles (from `first_at`): a handful of ANALYZEs per drop, each sampling
at most 30,000 rows, tens of milliseconds. It runs after the caller's commit, in a short
transaction of its own, and never raises (statistics are an optimisation).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session

log = structlog.get_logger(__name__)


class GrowthAnalyzer:
    """ANALYZE `tables` (schema-qualified names) each time the rows added through `added`
    double; only on PostgreSQL."""

    def __init__(
        self, sessions: Callable[[], Session], tables: Sequence[str], *, first_at: int = 2_000
    ) -> None:
        self._sessions = sessions
        self._tables = list(tables)
        self._lock = threading.Lock()
        self._added = 0
        self._next = first_at
        self.analyzed = 0  # how many times it analyzed (for tests and logs)

    def added(self, rows: int) -> None:
        """Rows were committed to the tables; ANALYZE them if their count doubled since."""
        with self._lock:
            self._added += rows
            if self._added < self._next:
                return
            self._next = 2 * self._added
            added = self._added
        try:
            with self._sessions() as session:
                if session.get_bind().dialect.name != "postgresql":
                    return
                for table in self._tables:
                    session.execute(text(f"ANALYZE {table}"))
                session.commit()
            self.analyzed += 1
            log.info("tables_analyzed", tables=self._tables, rows_added=added)
        except Exception as exc:
            log.warning("tables_not_analyzed", tables=self._tables, error=str(exc)[:200])
