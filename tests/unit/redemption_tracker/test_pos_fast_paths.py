"""The POS ingest's cheaper paths give byte for byte what the general helpers give."""

from __future__ import annotations

import pytest

from services.redemption_tracker.pos.ingest import _ITEMS, _ITEMS_JSON, _member_hash
from shared.crypto import member_hash


@pytest.mark.parametrize("member_id", ["M123abc", " m9x ", "ｍ全角", "x" * 200])
def test_member_hash_is_shared_crypto_member_hash(member_id: str) -> None:
    assert _member_hash("sekrit", member_id) == member_hash("sekrit", member_id)


def test_items_json_is_dump_json() -> None:
    items = _ITEMS.validate_python(
        [
            {"sku": "4901234567890", "category": "onigiri", "qty": 2, "unit_price": 120},
            {"sku": "1", "qty": 1, "unit_price": 5},
        ]
    )
    assert _ITEMS_JSON(items) == _ITEMS.dump_json(items)
