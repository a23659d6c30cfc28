"""SQLAlchemy 2 engine and session handling for PostgreSQL and SQLite.

Each service keeps its tables in its own schema. PostgreSQL has real schemas; on SQLite
(the embedded default) each schema is a separate database file ATTACHed under the
schema's name, so the same schema-qualified models and migrations work on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import DateTime, MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeDecorator

SCHEMAS = ("auth", "campaign_engine", "chat_agent", "redemption_tracker")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The one declarative base; every service's models share its metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both PostgreSQL and SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def make_engine(
    url: str, *, pool_size: int = 5, echo: bool = False, pre_ping: bool = True
) -> Engine:
    """An engine for the URL, with schemas attached on SQLite.

    `hide_parameters`: an error (and its traceback in a log) shows the statement but never
    the bound values, which can be member hashes, user ids or message texts
    (docs/architecture.md § Invariants, personal data).

    `pre_ping=False` is for worker loops (docs/architecture.md § Hot paths): a ping on every
    checkout is one more round trip per transaction. Without it a connection the server
    dropped fails on its next use; SQLAlchemy then invalidates the whole pool, and the
    loop's retry (consumer redelivery, the relay's back-off) runs on fresh connections.
    HTTP apps keep the ping: a request should not fail because the pool went stale.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo=echo)
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        echo=echo,
        hide_parameters=True,
    )


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    parsed = make_url(url)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:")
    if in_memory:
        engine = create_engine(
            "sqlite://",
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            echo=echo,
            hide_parameters=True,
        )
    else:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            echo=echo,
            hide_parameters=True,
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control so BEGIN IMMEDIATE can be issued: SQLite then
        # serialises writers up front instead of failing on a lock upgrade mid-way.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        for schema in SCHEMAS:
            target = (
                ":memory:"
                if in_memory
                else str(Path(database).with_name(f"{Path(database).stem}_{schema}.db"))
            )
            cur.execute(f"ATTACH DATABASE '{target}' AS {schema}")
            if not in_memory:
                cur.execute(f"PRAGMA {schema}.journal_mode = WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: Callable[[], Session]) -> Iterator[Session]:
    """One business transaction: commit on success, roll back on any error."""
    session = factory()
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def ping(engine: Engine) -> bool:
    """True when the database answers."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


class DriverStatement:
    """A Core statement compiled once for PostgreSQL and run straight on the transaction's
    own psycopg connection, for a hot path's few statements: SQLAlchemy's per-execution
    machinery (execution context, events, result wrapping) was ~40% of the CPU of a short
    statement. No statement hook sees it (an outbox insert must `outbox_wake.announce`
    itself), bind values go to psycopg as they are (aware datetimes, lists for arrays), and
    rows come back as plain tuples. PostgreSQL only (SQLite runs its own statement as usual).
    """

    def __init__(self, statement: ClauseElement | str, *, planned_each_time: bool = False) -> None:
        """`statement`: a Core statement, or SQL text with `%(name)s` parameters.

        `planned_each_time`: never a server-side prepared statement, so PostgreSQL plans it
        for the values and the table as they are now. For a statement on a table that grows
        from empty within minutes (a drop's members): psycopg prepares a statement after 5
        runs, and a plan made while the table was nearly empty (a sequential scan) was kept
        while it grew to 100,000 rows (~110 ms a run, measured, instead of ~1 ms)."""
        from sqlalchemy.dialects.postgresql.psycopg import dialect

        self._prepare = False if planned_each_time else None  # None: psycopg decides
        if isinstance(statement, str):
            self._sql, self._defaults = statement, {}
            return
        compiled = statement.compile(dialect=dialect())
        self._sql = str(compiled)
        self._defaults = dict(compiled.params)  # literal values bound at build time

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The statement's rows (none for a statement that returns nothing)."""
        dbapi: Any = conn.connection.dbapi_connection
        with dbapi.cursor() as cursor:
            cursor.execute(self._sql, {**self._defaults, **params}, prepare=self._prepare)
            return cursor.fetchall() if cursor.description is not None else []


class HotStatement:
    """A Core statement of a hot path, on either dialect: a `DriverStatement` on
    PostgreSQL, SQLAlchemy's own execution elsewhere (SQLite, the embedded default). Its
    bind values must suit both: aware datetimes, plain values. Rows come back as tuples."""

    def __init__(self, statement: Executable) -> None:
        self._core = statement
        self._postgresql = DriverStatement(cast(ClauseElement, statement))

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The statement's rows (none for a statement that returns nothing)."""
        if conn.dialect.name == "postgresql":
            return self._postgresql.rows(conn, params)
        result = conn.execute(self._core, dict(params))
        return [tuple(row) for row in result] if result.returns_rows else []
