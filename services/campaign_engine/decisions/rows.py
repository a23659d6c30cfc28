"""Multi-row INSERTs of a decision batch: one statement per table, built once per dialect.

On PostgreSQL the rows go in as one JSON document, `INSERT … SELECT … FROM
json_populate_recordset(NULL::<table>, :rows)`: a short statement whose text never changes
with the batch size, so neither SQLAlchemy nor psycopg renders or parses it again (a
100-row VALUES list costs ~1 ms of CPU to parse on every call, and per-column arrays as
much to escape), and orjson writes the document in C. On SQLite (the embedded default)
SQLAlchemy's multi-row insert does it.
Both take `ON CONFLICT (…) DO NOTHING` and `RETURNING` where asked (SQLite ≥ 3.35).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Table, TextClause, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert


class RowWriter:
    """Writes rows (dicts with exactly `columns`) to one table in one statement."""

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        *,
        conflict: Sequence[str] = (),
        returning: str | None = None,
    ) -> None:
        self.columns = tuple(columns)
        self._returning = returning
        self._postgresql = _json_insert(table, self.columns, conflict, returning)
        self._sqlite = _values_insert(table, conflict, returning)

    def write(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> list[Any]:
        """Insert the rows; the `returning` column of each row inserted (not a conflict)."""
        if not rows:
            return []
        if conn.dialect.name == "postgresql":
            document = orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            result = conn.execute(self._postgresql, {"rows": document})
        else:
            result = conn.execute(self._sqlite, list(rows))
        return [r[0] for r in result] if self._returning else []


def _json_insert(
    table: Table, columns: Sequence[str], conflict: Sequence[str], returning: str | None
) -> TextClause:
    names = ", ".join(columns)
    sql = (
        f"INSERT INTO {table.fullname} ({names}) SELECT {names} "
        f"FROM json_populate_recordset(NULL::{table.fullname}, CAST(:rows AS json))"
    )
    if conflict:
        sql += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    if returning:
        sql += f" RETURNING {returning}"
    return text(sql)


def _values_insert(table: Table, conflict: Sequence[str], returning: str | None) -> Insert:
    stmt = sqlite_insert(table)
    if conflict:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict))
    return stmt.returning(table.c[returning]) if returning else stmt
