"""The POS ingest's cheaper paths give byte for byte what the general helpers give."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.redemption_tracker.pos.checks import read_code
from services.redemption_tracker.pos.prepare import ITEMS, ITEMS_JSON, Firsts, prepare
from services.redemption_tracker.pos.schemas import PosTransaction
from shared.coupons import CouponClaims, coupon_key, issue_code
from shared.crypto import member_hash

KEY = coupon_key("k" * 40)


def _tx(**fields: object) -> PosTransaction:
    body = {
        "transaction_id": "S1-0001",
        "occurred_at": datetime(2026, 11, 29, 10, 15, tzinfo=timezone(timedelta(hours=9))),
        "total": 1280,
        "items": [
            {"sku": "4901234567890", "category": "onigiri", "qty": 2, "unit_price": 150},
            {"sku": "1", "qty": 1, "unit_price": 5},
        ],
    }
    return PosTransaction.model_validate(body | fields)


@pytest.mark.parametrize("member_id", ["M123abc", " m9x ", "ｍ全角", "x" * 64])
def test_member_hash_is_shared_crypto_member_hash(member_id: str) -> None:
    [t] = prepare("sekrit", [KEY], [(0, _tx(member_id=member_id))])
    assert t.member_hash == member_hash("sekrit", member_id)


def test_items_json_is_dump_json() -> None:
    items = _tx().items
    assert ITEMS_JSON(items) == ITEMS.dump_json(items)
    [t] = prepare("sekrit", [KEY], [(0, _tx())])
    assert t.items == ITEMS.dump_json(items).decode()


def test_the_fingerprint_keeps_its_stored_format() -> None:
    """Stored transactions are compared on it: the formula of every earlier release."""
    code = issue_code(KEY, CouponClaims(3, 0, 9, datetime(2027, 1, 1, tzinfo=UTC)))
    tx = _tx(member_id="M1", coupon_codes=[code, "junk"])
    [t] = prepare("sekrit", [KEY], [(7, tx)])
    parts = [tx.transaction_id, "2026-11-29T10:15:00+09:00", "JPY", "1280"]
    parts += [member_hash("sekrit", "M1"), f"{code}\x1fjunk", ITEMS.dump_json(tx.items).decode()]
    assert t.fingerprint == hashlib.sha256("|".join(parts).encode()).hexdigest()
    assert (t.index, t.tx) == (7, tx)
    assert t.presented == [read_code(KEY, code), read_code(KEY, "junk")]
    assert t.presented[0].claims is not None and t.presented[1].reason == "unknown_code"


def test_a_transaction_without_member_or_codes() -> None:
    [t] = prepare("sekrit", [KEY], [(0, _tx())])
    assert (t.member_hash, t.presented) == (None, [])


def test_firsts_prepare_in_key_order_as_taken_and_once() -> None:
    ready = [(i, _tx(transaction_id=tx_id)) for i, tx_id in enumerate(["S1-3", "S1-1", "S1-2"])]
    batch = Firsts("sekrit", [KEY], ready)
    assert len(batch) == 3
    taken = batch.in_key_order()
    first = next(taken)  # only what was taken so far is prepared
    assert (first.index, first.tx.transaction_id) == (1, "S1-1")
    rest = list(taken)
    assert [t.tx.transaction_id for t in rest] == ["S1-2", "S1-3"]
    again = list(batch.in_key_order())  # the same objects, not prepared twice
    assert all(a is b for a, b in zip(again, [first, *rest], strict=True))
    assert [t.index for t in batch.in_request_order()] == [0, 1, 2]
    by_prepare = prepare("sekrit", [KEY], ready)
    assert [t.fingerprint for t in batch.in_request_order()] == [t.fingerprint for t in by_prepare]


def test_firsts_left_half_way_are_prepared_again_from_the_start() -> None:
    ready = [(i, _tx(transaction_id=f"S1-{i}")) for i in range(4)]
    batch = Firsts("sekrit", [KEY], ready)
    half = batch.in_key_order()
    next(half), next(half)  # a COPY that failed after two rows
    assert [t.index for t in batch.in_request_order()] == [0, 1, 2, 3]
