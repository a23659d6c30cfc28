"""The POS ingest's cheaper paths give byte for byte what the general helpers give."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.redemption_tracker.pos.checks import read_code
from services.redemption_tracker.pos.prepare import ITEMS, ITEMS_JSON, prepare
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
