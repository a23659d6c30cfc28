"""POS ingest writes its plain inserts by COPY: the same rows as the INSERT path it replaced.

A mixed batch (redemptions, a code presented twice, forged and junk codes, a linked
member's sale, an in-batch repeat, an invalid transaction), then its re-send and a void,
goes through the app with every plain insert recorded. The recorded rows are then written
once by COPY and once by the earlier `unnest` INSERT into twin tables, and the stored rows
must be identical (JSON, NULLs, UUIDs and timestamps included).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

from services.redemption_tracker import sql
from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import CouponCheck, LedgerEntry, Outbox
from services.redemption_tracker.sql import copy_rows, unnest_rows
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


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Table, list[dict[str, Any]]]]:
    calls: list[tuple[Table, list[dict[str, Any]]]] = []
    real = sql.copy_rows

    def record(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
        calls.append((table, [dict(r) for r in rows]))
        real(session, table, rows)

    monkeypatch.setattr(sql, "copy_rows", record)
    return calls


def test_a_mixed_batch_writes_by_copy_exactly_the_rows_of_the_insert_path(
    client: FlaskClient,
    tracker: Tracker,
    auth: dict[str, str],
    store: str,
    recorded: list[tuple[Table, list[dict[str, Any]]]],
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
    copied = {table.name for table, _ in recorded}
    assert copied >= {"coupon_checks", "ledger_entries", "outbox"}, copied

    twins = f"copy_eq_{uid()}".replace("-", "_")
    with unit_of_work(tracker.sessions) as s:
        s.execute(text(f"CREATE SCHEMA {twins}"))
        for table, rows in recorded:
            for suffix, write in (("copy", copy_rows), ("insert", unnest_rows)):
                twin = Table(f"{table.name}_{suffix}", table.metadata.__class__(), schema=twins)
                for column in table.columns:
                    twin.append_column(column._copy())
                s.execute(
                    text(
                        f"CREATE TABLE IF NOT EXISTS {twins}.{twin.name} "
                        f"(LIKE {table.schema}.{table.name} INCLUDING DEFAULTS)"
                    )
                )
                write(s, twin, rows)
    with tracker.sessions() as s:
        for table, _ in recorded:
            cols = ", ".join(c.name for c in table.columns if c.name != "id")
            for a, b in (("copy", "insert"), ("insert", "copy")):
                extra = s.execute(
                    text(
                        f"SELECT count(*) FROM (SELECT {cols} FROM {twins}.{table.name}_{a} "
                        f"EXCEPT ALL SELECT {cols} FROM {twins}.{table.name}_{b}) d"
                    )
                ).scalar_one()
                assert extra == 0, f"{table.name}: {extra} rows only in the {a} twin"
        assert s.execute(select(func.count()).select_from(CouponCheck)).scalar_one() > 0
        for model in (CouponCheck, LedgerEntry, Outbox):
            name = model.__tablename__
            n = sum(len(rows) for table, rows in recorded if table.name == name)
            assert s.execute(text(f"SELECT count(*) FROM {twins}.{name}_copy")).scalar_one() == n
