"""POS ingest: one code path for HTTP batches and the `pos.transactions` topic.

A batch is one database transaction made of bulk statements, in a fixed lock order
(transactions by id → codes by value → campaign counters by id), so concurrent batches
cannot deadlock one another and exactly-once holds by constraint, not by luck:

1. insert the transactions, `ON CONFLICT DO NOTHING RETURNING`: what is not returned
   was recorded before (or by a concurrent batch, whose commit we wait for) and is
   answered `duplicate` with its stored outcome. First tried as a plain COPY with ids
   drawn up front (`_write_first_time`), which a single conflict fails and rolls back;
2. the offline checks of pos/checks.py for each coupon of the new transactions;
3. claim the surviving codes in `redemptions` (`ON CONFLICT` on the live-code unique
   index): a code someone else holds is `already_redeemed`;
4. lock the campaigns' counters, admit claims within `max_redemptions` /
   `max_discount_total` in batch order, and drop the rest (`redemption_budget_exhausted`);
5. write coupon checks, ledger entries and outbox events (coupon.redeemed,
   coupon.redemption_rejected, sale.recorded) in the same commit.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import structlog
from psycopg.errors import UniqueViolation
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from services.redemption_tracker import metrics
from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import CouponCheck, Transaction
from services.redemption_tracker.pos.batch import BatchTx, load_copies
from services.redemption_tracker.pos.prepare import Firsts, prepare
from services.redemption_tracker.pos.redeem import settle_coupons, write_outcomes
from services.redemption_tracker.pos.schemas import PosTransaction, Rejected
from services.redemption_tracker.sql import (
    COPY_MIN_ROWS,
    copy_with_ids,
    insert_tuples,
    table_of,
)
from shared.db import unit_of_work

log = structlog.get_logger(__name__)

_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
_TX_KEY = "uq_rt_transactions_store_tx"  # a transaction is recorded once per store
T = TypeVar("T")
_TX_COLUMNS = (
    "store_id",
    "transaction_id",
    "occurred_at",
    "member_hash",
    "currency",
    "total",
    "items",
    "fingerprint",
    "source",
    "received_at",
)


def _result(
    tx_id: str | None,
    status: str,
    coupons: list[dict[str, Any]],
    errors: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {"transaction_id": tx_id, "status": status, "errors": errors or [], "coupons": coupons}


def _refused(tx_id: str, field: str, message: str) -> dict[str, Any]:
    return _result(tx_id, "rejected", [], [{"field": field, "message": message}])


def ingest(
    tracker: Tracker, store_id: str, items: list[PosTransaction | Rejected], source: str = "http"
) -> list[dict[str, Any]]:
    """Record a batch of one store's transactions; one result per item, in order."""
    started = time.perf_counter()
    results: list[dict[str, Any] | None] = [None] * len(items)
    latest = tracker.till_time.latest(tracker.clock())
    ready: list[tuple[int, PosTransaction]] = []
    for i, item in enumerate(items):
        if isinstance(item, Rejected):
            results[i] = _result(item.transaction_id, "rejected", [], item.errors)
        elif item.occurred_at > latest:
            skew = int(tracker.till_time.clock_skew.total_seconds())
            results[i] = _refused(
                item.transaction_id,
                f"transactions.{i}.occurred_at",
                f"is in the future by more than the allowed clock skew ({skew} s)",
            )
        elif item.store_id is not None and item.store_id != store_id:
            results[i] = _refused(
                item.transaction_id,
                f"transactions.{i}.store_id",
                f"does not match the batch's store {store_id!r}",
            )
        else:
            ready.append((i, item))
    firsts: dict[str, tuple[int, PosTransaction]] = {}
    repeated: list[tuple[int, PosTransaction]] = []  # a transaction id seen before in the batch
    for i, item in ready:
        if item.transaction_id in firsts:
            repeated.append((i, item))
        else:
            firsts[item.transaction_id] = (i, item)
    batch = Firsts(tracker.pseudonym_secret, tracker.coupon_keys, firsts.values())
    stored: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    if batch:
        stored = _with_retries(lambda: _write_first_time(tracker, store_id, batch, source))
    fresh = batch.in_request_order()
    for t in fresh:
        if t.row_id is not None:
            coupons = [o.public() for o in t.outcomes] if t.outcomes else []
            results[t.index] = _result(t.tx.transaction_id, "accepted", coupons)
        else:
            fingerprint, coupons = stored[t.tx.transaction_id]
            results[t.index] = _duplicate(
                t.tx.transaction_id, coupons, fingerprint != t.fingerprint
            )
    first_of = {t.tx.transaction_id: t for t in fresh} if repeated else {}
    for again in prepare(tracker.pseudonym_secret, tracker.coupon_keys, repeated):
        first = first_of[again.tx.transaction_id]
        original = results[first.index]
        assert original is not None
        results[again.index] = _duplicate(
            first.tx.transaction_id, original["coupons"], again.fingerprint != first.fingerprint
        )
    _observe(results, source, time.perf_counter() - started, store_id)
    return [r for r in results if r is not None]


def _duplicate(tx_id: str, coupons: list[dict[str, Any]], differs: bool) -> dict[str, Any]:
    errors = (
        [
            {
                "field": "transaction_id",
                "message": "already recorded with different content; the original outcome stands",
            }
        ]
        if differs
        else []
    )
    return _result(tx_id, "duplicate", coupons, errors)


def _with_retries(work: Callable[[], T], attempts: int = 3) -> T:
    """Run a whole-batch transaction again after a deadlock or serialization failure."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            if code not in _RETRYABLE_SQLSTATES or attempt == attempts:
                raise
            log.warning("pos_batch_retry", sqlstate=code, attempt=attempt)
            time.sleep(0.01 * attempt)
    raise AssertionError("unreachable")


def _write_first_time(
    tracker: Tracker, store_id: str, fresh: Firsts, source: str
) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """`_write_batch` by COPY straight into `transactions`, else with conflicts resolved.

    The COPY fails on a transaction recorded before, or by a concurrent batch (the unique
    index waits for that batch's commit first): the whole attempt is rolled back, since
    the transactions are its first write, and made again with `ON CONFLICT`, which answers
    those as duplicates. A re-sent batch pays for a COPY that fails, a new one goes faster.
    """
    try:
        return _write_batch(tracker, store_id, fresh, source, by_copy=True)
    except UniqueViolation as exc:
        if exc.diag.constraint_name != _TX_KEY:
            raise
        log.info("pos_batch_has_duplicates", store_id=store_id, transactions=len(fresh))
        return _write_batch(tracker, store_id, fresh, source, by_copy=False)


def _write_batch(
    tracker: Tracker, store_id: str, batch: Firsts, source: str, *, by_copy: bool
) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """The one database transaction of a batch; returns the stored outcomes of duplicates.

    By COPY, each transaction is prepared as its row is written (`Firsts`).
    """
    now = tracker.clock()
    in_order: list[BatchTx] = []  # as the rows go in: by transaction id

    def rows() -> Iterator[tuple[Any, ...]]:
        for t in batch.in_key_order():
            t.row_id, t.outcomes = None, []  # a retry starts over
            in_order.append(t)
            tx = t.tx
            yield (
                store_id,
                tx.transaction_id,
                tx.occurred_at,
                t.member_hash,
                tx.currency,
                tx.total,
                t.items,
                t.fingerprint,
                source,
                now,
            )

    with unit_of_work(tracker.sessions) as s:
        table = table_of(Transaction)
        if by_copy and len(batch) >= COPY_MIN_ROWS and s.get_bind().dialect.name == "postgresql":
            ids = copy_with_ids(s, table, _TX_COLUMNS, rows(), len(batch))
            for t, row_id in zip(in_order, ids, strict=True):
                t.row_id = row_id
        else:
            inserted = dict(
                insert_tuples(
                    s,
                    table,
                    _TX_COLUMNS,
                    list(rows()),
                    conflict=("store_id", "transaction_id"),
                    returning=("transaction_id", "id"),
                )
            )
            for t in in_order:
                t.row_id = inserted.get(t.tx.transaction_id)
        fresh = batch.in_request_order()
        new = [t for t in fresh if t.row_id is not None]
        copies = load_copies(s, new)
        settle_coupons(s, new, copies, store_id, now, tracker.till_time)
        write_outcomes(s, tracker, new, copies, store_id, now)
        return _stored_outcomes(s, store_id, [t for t in fresh if t.row_id is None])


def _stored_outcomes(
    s: Session, store_id: str, dups: list[BatchTx]
) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """The fingerprint and coupon results a duplicate's original got."""
    if not dups:
        return {}
    rows = s.execute(
        select(Transaction.id, Transaction.transaction_id, Transaction.fingerprint).where(
            Transaction.store_id == store_id,
            Transaction.transaction_id.in_([t.tx.transaction_id for t in dups]),
        )
    ).all()
    by_row = {row_id: (tx_id, fp) for row_id, tx_id, fp in rows}
    coupons: dict[int, list[dict[str, Any]]] = {row_id: [] for row_id in by_row}
    for c in s.execute(
        select(CouponCheck)
        .where(CouponCheck.tx_id.in_(list(by_row)))
        .order_by(CouponCheck.tx_id, CouponCheck.position)
    ).scalars():
        coupons[c.tx_id].append(
            {"code": c.code, "status": c.status, "reason": c.reason, "discount": c.discount}
        )
    return {tx_id: (fp, coupons[row_id]) for row_id, (tx_id, fp) in by_row.items()}


def _observe(
    results: list[dict[str, Any] | None], source: str, seconds: float, store_id: str
) -> None:
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    coupons: Counter[tuple[str, str]] = Counter()
    for r in results:
        if r is None:
            continue
        counts[r["status"]] += 1
        if r["status"] == "accepted" and r["coupons"]:
            coupons.update((c["status"], c["reason"] or "") for c in r["coupons"])
    for outcome, n in counts.items():
        if n:
            metrics.TRANSACTIONS.labels(outcome, source).inc(n)
    for (status, reason), n in coupons.items():  # one label lookup per kind, not per coupon
        metrics.COUPONS.labels(status, reason).inc(n)
    redeemed = coupons[("redeemed", "")]
    metrics.REDEMPTIONS.inc(redeemed)
    metrics.INGEST_SECONDS.labels(source).observe(seconds)
    log.info(
        "pos_batch_ingested",
        store_id=store_id,
        source=source,
        redeemed=redeemed,
        ms=round(seconds * 1000, 1),
        **counts,
    )
