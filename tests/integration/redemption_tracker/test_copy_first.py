"""Transactions COPYed straight into their table, and what happens when one was there before.

A batch of new transactions goes in by one plain COPY with ids drawn from the sequence
(`sql.copy_with_ids`); a batch with any transaction recorded before (or by a concurrent
batch) fails that COPY on the unique key, is rolled back whole and is made again with
`ON CONFLICT` (pos/ingest.py `_write_first_time`). Either way each transaction is stored
once, its coupons redeemed once, and a re-send is answered `duplicate` with the original
outcome.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Table, func, select

from services.redemption_tracker import sql
from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import CampaignUsage, LedgerEntry, Transaction
from services.redemption_tracker.pos import ingest
from tests.integration.redemption_tracker.support import live_redemptions, outbox_events, post
from tests.support.redemption_tracker.builders import CampaignSpec, tx

Calls = dict[str, list[Any]]


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """How each transactions insert went: `copied` (ids returned), `failed`, `resolved`."""
    calls: Calls = {"copied": [], "failed": [], "resolved": []}
    real_copy, real_staged = sql.copy_with_ids, sql.staged_insert

    def copy_with_ids(
        session: Any, table: Table, names: Sequence[str], rows: Iterable[Any], n: int
    ) -> Any:
        seen: list[Any] = []
        taken = (seen.append(row) or row for row in rows)  # recorded as the COPY takes them
        try:
            ids = real_copy(session, table, names, taken, n)
        except Exception as exc:
            calls["failed"].append(type(exc).__name__)
            raise
        calls["copied"].append(dict(zip((r[1] for r in seen), ids, strict=True)))
        return ids

    def staged(session: Any, table: Table, names: Sequence[str], rows: list[Any], on: Any) -> Any:
        if table.name == "transactions":
            calls["resolved"].append(len(rows))
        return real_staged(session, table, names, rows, on)

    monkeypatch.setattr(ingest, "copy_with_ids", copy_with_ids)
    monkeypatch.setattr(sql, "staged_insert", staged)
    return calls


def _stored_ids(tracker: Tracker, store: str, tx_ids: list[str]) -> dict[str, int]:
    with tracker.sessions() as s:
        rows = s.execute(
            select(Transaction.transaction_id, Transaction.id).where(
                Transaction.store_id == store, Transaction.transaction_id.in_(tx_ids)
            )
        ).all()
    return {tx_id: row_id for tx_id, row_id in rows}


def test_a_new_batch_is_copied_with_the_ids_it_is_stored_under(
    tracker: Tracker, auth: dict, store: str, paths: Calls
) -> None:
    c = CampaignSpec(tracker)
    batch = [tx(total=900, coupons=[c.code()] if i % 4 == 0 else []) for i in range(20)]
    results = post(create_app(tracker=tracker).test_client(), auth["pos"], store, *batch)
    assert [r["status"] for r in results] == ["accepted"] * 20
    assert paths["failed"] == [] and paths["resolved"] == []
    [copied] = paths["copied"]
    assert copied == _stored_ids(tracker, store, [t["transaction_id"] for t in batch])
    assert len(set(copied.values())) == 20
    redeemed = [cp for r in results for cp in r["coupons"] if cp["status"] == "redeemed"]
    assert len(redeemed) == 5
    assert sum(live_redemptions(tracker, cp["code"]) for cp in redeemed) == 5


def test_a_batch_with_one_old_transaction_falls_back_and_answers_it_duplicate(
    tracker: Tracker, auth: dict, store: str, paths: Calls
) -> None:
    c = CampaignSpec(tracker)
    client = create_app(tracker=tracker).test_client()
    old = tx(total=900, coupons=[c.code()])
    [first] = post(client, auth["pos"], store, old)
    changed = {**old, "total": 901}  # the same id, other content: refused by field
    batch = [tx(total=500, coupons=[c.code()]) for _ in range(12)] + [old, changed]
    results = post(client, auth["pos"], store, *batch)
    assert paths["failed"] == ["UniqueViolation"] and paths["resolved"] == [13]
    assert [r["status"] for r in results] == ["accepted"] * 12 + ["duplicate"] * 2
    assert results[12] == {**first, "status": "duplicate"}
    assert results[13]["errors"] == [
        {
            "field": "transaction_id",
            "message": "already recorded with different content; the original outcome stands",
        }
    ]
    assert all(r["coupons"][0]["status"] == "redeemed" for r in results[:12])
    stored = _stored_ids(tracker, store, [t["transaction_id"] for t in batch])
    assert len(stored) == 13  # the failed COPY left nothing behind
    with tracker.sessions() as s:
        usage = s.get(CampaignUsage, c.campaign_id)
        entries = s.execute(
            select(func.count()).where(LedgerEntry.campaign_id == c.campaign_id)
        ).scalar_one()
    assert usage is not None and usage.redemptions == 13 and entries == 13


def test_two_tills_sending_the_same_batch_at_once_record_it_once(
    tracker: Tracker, auth: dict, store: str, paths: Calls
) -> None:
    c = CampaignSpec(tracker)
    app = create_app(tracker=tracker)
    barrier = threading.Barrier(2, timeout=30)
    rounds = 3
    for _ in range(rounds):
        batch = [tx(total=700, coupons=[c.code()] if i % 3 == 0 else []) for i in range(30)]

        def till(_: int, batch: list[dict[str, Any]] = batch) -> list[dict[str, Any]]:
            barrier.wait()
            return post(app.test_client(), auth["pos"], store, *batch)

        with ThreadPoolExecutor(2) as pool:
            a, b = pool.map(till, range(2))
        for ra, rb in zip(a, b, strict=True):
            assert {ra["status"], rb["status"]} == {"accepted", "duplicate"}
            assert ra["coupons"] == rb["coupons"]
            assert [cp["status"] for cp in ra["coupons"]] in ([], ["redeemed"])
        codes = [t["coupon_codes"][0] for t in batch if t["coupon_codes"]]
        assert all(live_redemptions(tracker, code) == 1 for code in codes)
        assert all(len(outbox_events(tracker, "coupon.redeemed", code=code)) == 1 for code in codes)
        assert len(_stored_ids(tracker, store, [t["transaction_id"] for t in batch])) == 30
    # In each round one COPY went in; the other failed on the unique key (at once, or once
    # the winner committed) and its batch was made again with ON CONFLICT.
    assert len(paths["copied"]) == rounds
    assert paths["failed"] == ["UniqueViolation"] * rounds
    assert paths["resolved"] == [30] * rounds
    with tracker.sessions() as s:
        usage = s.get(CampaignUsage, c.campaign_id)
    assert usage is not None and usage.redemptions == 10 * rounds


def test_a_large_resend_fails_its_copy_early_and_is_answered_in_full(
    tracker: Tracker, auth: dict, store: str, paths: Calls
) -> None:
    # The first row in key order conflicts; the rest (several COPY buffers) are still
    # streamed while the server has already refused it, and the error comes at the end.
    client = create_app(tracker=tracker).test_client()
    batch = sorted((tx(total=600) for _ in range(400)), key=lambda t: t["transaction_id"])
    post(client, auth["pos"], store, batch[0])
    results = post(client, auth["pos"], store, *batch)
    assert [r["status"] for r in results] == ["duplicate"] + ["accepted"] * 399
    again = post(client, auth["pos"], store, *batch)
    assert {r["status"] for r in again} == {"duplicate"}
    assert paths["failed"] == ["UniqueViolation"] * 2 and paths["resolved"] == [400, 400]
    assert len(_stored_ids(tracker, store, [t["transaction_id"] for t in batch])) == 400
