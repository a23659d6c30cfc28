"""Field paths of validation errors, and the pos.transactions decoder (→ DLQ on poison)."""

from __future__ import annotations

import json

import pytest

from services.redemption_tracker.pos.schemas import PosTransaction, Rejected, validate_transactions
from services.redemption_tracker.pos.topic import decode_pos_message
from shared.bus import Message
from shared.consumer import PoisonMessage
from tests.support.redemption_tracker.builders import tx


def msg(value: object, key: str | None = "S1") -> Message:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Message("pos.transactions", 0, 0, key, raw)


def test_errors_name_the_field_of_the_transaction() -> None:
    bad = tx()
    bad["items"][0]["unit_price"] = 1.5
    bad["coupon_codes"] = ["x" * 101]
    bad["surprise"] = 1
    out = validate_transactions([tx(), bad])
    assert isinstance(out[0], PosTransaction) and isinstance(out[1], Rejected)
    assert {e["field"] for e in out[1].errors} == {
        "transactions.1.items.0.unit_price",
        "transactions.1.coupon_codes.0",
        "transactions.1.surprise",
    }


def test_money_must_be_an_integer() -> None:
    for total in ("100", 10.0, -1, True):
        out = validate_transactions([{**tx(), "total": total}])
        assert isinstance(out[0], Rejected), total


def test_decoder_takes_the_store_from_the_key_or_the_field() -> None:
    store, t = decode_pos_message(msg(tx()))
    assert store == "S1" and isinstance(t, PosTransaction)
    store, _ = decode_pos_message(msg({**tx(), "store_id": "S2"}, key=None))
    assert store == "S2"


@pytest.mark.parametrize(
    ("value", "key", "words"),
    [
        (b"\xff\xfe", "S1", "not valid JSON"),
        ([tx()], "S1", "one transaction object"),
        (tx(), None, "store_id"),
        ({**tx(), "store_id": "S2"}, "S1", "differs"),
        ({**tx(), "total": "x"}, "S1", "total"),
    ],
)
def test_malformed_messages_are_poison(value: object, key: str | None, words: str) -> None:
    with pytest.raises(PoisonMessage, match=words):
        decode_pos_message(msg(value, key))
