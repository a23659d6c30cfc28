"""POS ingest writes by COPY: the same rows as a plain SQLAlchemy INSERT of the same values.

A mixed batch (redemptions, a code presented twice, forged and junk codes, a linked
member's sale, an in-batch repeat, an invalid transaction), then its re-send and a void,
goes through the app with every COPY recorded: plain inserts (`copy_rows`), new
transactions copied with their ids drawn first (`copy_with_ids`) and inserts through a
staging table (`staged_insert`, for redemptions, and for transactions once the re-send's
COPY failed on its duplicates: they resolve conflicts and return ids). The recorded rows are then written once by that path and once
by SQLAlchemy's executemany INSERT (`ON CONFLICT … DO NOTHING` alike) into twin tables, and
the stored rows must be identical (JSON, NULLs, UUIDs and timestamps included).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session

from services.redemption_tracker import sql
from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import (
    CouponCheck,
    LedgerEntry,
    Outbox,
    Redemption,
    Transaction,
)
from services.redemption_tracker.pos import ingest
from services.redemption_tracker.sql import (
    Upsert,
    bulk,
    copy_rows,
    insert_ignore,
    staged_insert,
)
from shared.db import unit_of_work
from tests.integration.redemption_tracker.support import post, void
from tests.support.redemption_tracker.builders import (
    CampaignSpec,
    apply,
    forged_code,
    linked_event,
    tx,
    uid,
)


def _mixed_batch(tracker: Tracker, c: CampaignSpec) -> list[dict[str, Any]]:
    member = uid("M")
    apply(tracker, linked_event(tracker, uid("c_"), member))
    twice = c.code()
    batch = [tx(total=900, coupons=[c.code()]) for _ in range(12)]
    batch += [
        tx(total=800, coupons=[twice]),
        tx(total=800, coupons=[twice]),  # already_redeemed within the batch
        tx(total=700, coupons=[forged_code(c.number)]),
        tx(total=700, coupons=["TN-JUNK"]),
        tx(total=650, member_id=member),  # sale.recorded
        tx(total=650, member_id=member, coupons=[c.code()]),
        {"transaction_id": uid("tx-")},  # invalid: rejected before ingest
    ]
    batch += [tx(total=400) for _ in range(10)]
    batch.append(dict(batch[0]))  # repeated inside the batch
    return batch


Written = tuple[str, Table, list[str], list[tuple[Any, ...]], dict[str, Any]]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Written]:
    """Every COPY the ingest makes: (path, table, columns, rows, conflict options)."""
    calls: list[Written] = []
    real_copy, real_staged, real_with_ids = sql.copy_rows, sql.staged_insert, sql.copy_with_ids

    def copy(session: Session, table: Table, names: Sequence[str], rows: list[Any]) -> None:
        calls.append(("copy", table, list(names), list(rows), {}))
        real_copy(session, table, names, rows)

    def with_ids(
        session: Session, table: Table, names: Sequence[str], rows: Iterable[Any], n: int
    ) -> Any:
        seen: list[Any] = []
        ids = real_with_ids(session, table, names, (seen.append(r) or r for r in rows), n)
        calls.append(("copy_ids", table, list(names), seen, {}))  # once it went in
        return ids

    def staged(
        session: Session, table: Table, names: Sequence[str], rows: list[Any], on: Upsert
    ) -> list[tuple[Any, ...]]:
        calls.append(("staged", table, list(names), list(rows), on._asdict()))
        return real_staged(session, table, names, rows, on)

    monkeypatch.setattr(sql, "copy_rows", copy)
    monkeypatch.setattr(sql, "staged_insert", staged)
    monkeypatch.setattr(ingest, "copy_with_ids", with_ids)
    return calls


def _reference(s: Session, twin: Table, names: list[str], rows: list[Any], **kw: Any) -> None:
    """The same rows through SQLAlchemy's executemany (its JSON type serialises JSON)."""
    dicts = [dict(zip(names, row, strict=True)) for row in rows]
    for d in dicts:
        for name in names:
            if name == "items" and d[name] is not None:
                d[name] = json.loads(d[name])
    conflict = kw.get("conflict")
    stmt = (
        insert_ignore(s, twin, conflict, text(kw["where"]) if kw.get("where") else None)
        if conflict
        else insert(twin)
    )
    bulk(s, stmt, dicts)


def test_a_mixed_batch_writes_by_copy_exactly_the_rows_of_the_insert_path(
    client: FlaskClient,
    tracker: Tracker,
    auth: dict[str, str],
    store: str,
    recorded: list[Written],
) -> None:
    c = CampaignSpec(tracker)
    batch = _mixed_batch(tracker, c)
    first = post(client, auth["pos"], store, *batch)
    again = post(client, auth["pos"], store, *batch)
    assert [r["status"] for r in again if r["status"] != "rejected"] == ["duplicate"] * 29
    assert [r["coupons"] for r in again] == [r["coupons"] for r in first]
    statuses = [
        cp["reason"] or cp["status"]
        for r in first
        if r["status"] == "accepted"
        for cp in r["coupons"]
    ]
    assert statuses.count("redeemed") == 14
    assert {"already_redeemed", "forged", "unknown_code"} <= set(statuses)
    assert void(client, auth["pos"], store, batch[0]).status_code == 200

    recorded = list(recorded)  # what the ingest copied; nothing below adds to it
    paths = {(path, table.name) for path, table, *_ in recorded}
    assert paths >= {
        ("copy", "coupon_checks"),
        ("copy", "ledger_entries"),
        ("copy", "outbox"),
        ("copy_ids", "transactions"),
        ("staged", "transactions"),
        ("staged", "redemptions"),
    }, paths

    twins = f"copy_eq_{uid()}".replace("-", "_")
    with unit_of_work(tracker.sessions) as s:
        s.execute(text(f"CREATE SCHEMA {twins}"))
        for path, table, names, rows, kw in recorded:
            for suffix in ("copy", "insert"):
                twin = Table(f"{table.name}_{suffix}", table.metadata.__class__(), schema=twins)
                for column in table.columns:
                    twin.append_column(column._copy())
                s.execute(
                    text(
                        f"CREATE TABLE IF NOT EXISTS {twins}.{twin.name} "
                        f"(LIKE {table.schema}.{table.name} INCLUDING ALL)"
                    )
                )
                if suffix == "insert":
                    _reference(s, twin, names, rows, **kw)
                elif path in ("copy", "copy_ids"):  # the same COPY; the ids aside
                    copy_rows(s, twin, names, rows)
                else:
                    staged_insert(s, twin, names, rows, Upsert(**kw))
    with tracker.sessions() as s:
        for _, table, *_ in recorded:
            cols = ", ".join(
                f"{c.name}::jsonb" if c.name == "items" else c.name
                for c in table.columns
                if c.name != "id"
            )
            for a, b in (("copy", "insert"), ("insert", "copy")):
                extra = s.execute(
                    text(
                        f"SELECT count(*) FROM (SELECT {cols} FROM {twins}.{table.name}_{a} "
                        f"EXCEPT ALL SELECT {cols} FROM {twins}.{table.name}_{b}) d"
                    )
                ).scalar_one()
                assert extra == 0, f"{table.name}: {extra} rows only in the {a} twin"
        assert s.execute(select(func.count()).select_from(CouponCheck)).scalar_one() > 0
        for model in (CouponCheck, LedgerEntry, Outbox, Transaction, Redemption):
            name = model.__tablename__
            n = sum(len(rows) for _, table, _, rows, _ in recorded if table.name == name)
            stored = s.execute(text(f"SELECT count(*) FROM {twins}.{name}_copy")).scalar_one()
            # Plain copies keep every row; staged ones drop the re-send's conflicts.
            assert 0 < stored <= n
            assert stored == n or model in (Transaction, Redemption)
