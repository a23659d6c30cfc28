"""Multi-row INSERTs for hot paths (a decision batch, a drop's page of followers): one
statement per table, built once per dialect.

On PostgreSQL the rows go in as one JSON document, `INSERT … SELECT … FROM
json_populate_recordset(NULL::<table>, :rows)`: a short statement whose text never changes
with the batch size, so psycopg prepares it once (a 100-row VALUES list costs ~1 ms of CPU
to parse on every call, and per-column arrays as much to escape), and orjson writes the
document in C. It runs on the transaction's own psycopg connection (shared.db
DriverStatement, past SQLAlchemy's statement machinery: ~40% of a write's CPU); an outbox
write then announces itself (shared/outbox_wake.announce), as the statement hook would
have. On SQLite (the embedded default) SQLAlchemy's multi-row insert does it. Both take
`ON CONFLICT (…) DO NOTHING` and `RETURNING` where asked (SQLite ≥ 3.35).

`any_of` is the matching WHERE for many keys: `= ANY(:array)` on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson
from sqlalchemy import ColumnElement, Table, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from shared.db import DriverStatement
from shared.outbox_wake import announce


class RowWriter:
    """Writes rows (dicts with exactly `columns`) to one table in one statement."""

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        *,
        conflict: Sequence[str] | Literal["any"] = (),
        returning: str | None = None,
    ) -> None:
        """`conflict`: skip a row that conflicts on these columns' unique key (`ON CONFLICT
        (…) DO NOTHING`), or on any unique key ("any": `ON CONFLICT DO NOTHING`)."""
        self.columns = tuple(columns)
        self._returning = returning
        self._postgresql = DriverStatement(_json_insert(table, self.columns, conflict, returning))
        self._sqlite = _values_insert(table, conflict, returning)
        self._outbox_of = table.schema if table.name == "outbox" else None

    def write(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> list[Any]:
        """Insert the rows; the `returning` column of each row inserted (not a conflict)."""
        if not rows:
            return []
        if conn.dialect.name == "postgresql":
            document = orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            returned = self._postgresql.rows(conn, {"rows": document})
            if self._outbox_of is not None:
                announce(conn, self._outbox_of)
            return [r[0] for r in returned] if self._returning else []
        result = conn.execute(self._sqlite, list(rows))
        return [r[0] for r in result] if self._returning else []


def _json_insert(
    table: Table,
    columns: Sequence[str],
    conflict: Sequence[str] | Literal["any"],
    returning: str | None,
) -> str:
    names = ", ".join(columns)
    sql = (
        f"INSERT INTO {table.fullname} ({names}) SELECT {names} "
        f"FROM json_populate_recordset(NULL::{table.fullname}, CAST(%(rows)s AS json))"
    )
    if conflict == "any":
        sql += " ON CONFLICT DO NOTHING"
    elif conflict:
        sql += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    if returning:
        sql += f" RETURNING {returning}"
    return sql


def _values_insert(
    table: Table, conflict: Sequence[str] | Literal["any"], returning: str | None
) -> Insert:
    stmt = sqlite_insert(table)
    if conflict == "any":
        stmt = stmt.on_conflict_do_nothing()
    elif conflict:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict))
    return stmt.returning(table.c[returning]) if returning else stmt


def any_of(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values` as one array parameter on PostgreSQL (`= ANY(:values)`): the
    statement's text is the same for any number of values, so psycopg converts it once
    and SQLAlchemy coerces no value one by one (an IN list of a batch's 256 ids was ~15%
    of a delivery claim's CPU). Elsewhere an IN list."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))
