"""POS ingest: one code path for HTTP batches and the `pos.transactions` topic.

A batch is one database transaction made of bulk statements, in a fixed lock order
(transactions by id → codes by value → campaign counters by id), so concurrent batches
cannot deadlock one another and exactly-once holds by constraint, not by luck:

1. insert the transactions, `ON CONFLICT DO NOTHING RETURNING`: what is not returned
   was recorded before (or by a concurrent batch, whose commit we wait for) and is
   answered `duplicate` with its stored outcome;
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
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from services.redemption_tracker import metrics
from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import CouponCheck, Transaction
from services.redemption_tracker.pos.batch import BatchTx, load_copies
from services.redemption_tracker.pos.prepare import prepare
from services.redemption_tracker.pos.redeem import settle_coupons, write_outcomes
from services.redemption_tracker.pos.schemas import PosTransaction, Rejected
from services.redemption_tracker.sql import insert_tuples, table_of
from shared.db import unit_of_work

log = structlog.get_logger(__name__)

_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
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
    fresh: list[BatchTx] = []
    first_seen: dict[str, BatchTx] = {}
    repeats: list[tuple[int, BatchTx, str]] = []  # (index, first occurrence, fingerprint)
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
    for t in prepare(tracker.pseudonym_secret, tracker.coupon_keys, ready):
        tx_id = t.tx.transaction_id
        if tx_id in first_seen:
            repeats.append((t.index, first_seen[tx_id], t.fingerprint))
        else:
            first_seen[tx_id] = t
            fresh.append(t)
    stored: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    if fresh:
        stored = _with_retries(lambda: _write_batch(tracker, store_id, fresh, source))
    for t in fresh:
        if t.row_id is not None:
            coupons = [o.public() for o in t.outcomes] if t.outcomes else []
            results[t.index] = _result(t.tx.transaction_id, "accepted", coupons)
        else:
            fingerprint, coupons = stored[t.tx.transaction_id]
            results[t.index] = _duplicate(
                t.tx.transaction_id, coupons, fingerprint != t.fingerprint
            )
    for i, first, fingerprint in repeats:
        original = results[first.index]
        assert original is not None
        results[i] = _duplicate(
            first.tx.transaction_id, original["coupons"], fingerprint != first.fingerprint
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


def _write_batch(
    tracker: Tracker, store_id: str, fresh: list[BatchTx], source: str
) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """The one database transaction of a batch; returns the stored outcomes of duplicates."""
    now = tracker.clock()
    for t in fresh:
        t.row_id, t.outcomes = None, []
    with unit_of_work(tracker.sessions) as s:
        rows = [
            (
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
            for t in sorted(fresh, key=lambda t: t.tx.transaction_id)
            for tx in (t.tx,)
        ]
        inserted = dict(
            insert_tuples(
                s,
                table_of(Transaction),
                _TX_COLUMNS,
                rows,
                conflict=("store_id", "transaction_id"),
                returning=("transaction_id", "id"),
            )
        )
        new = []
        for t in fresh:
            t.row_id = inserted.get(t.tx.transaction_id)
            if t.row_id is not None:
                new.append(t)
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
