"""The `pos.transactions` topic: one transaction per message, through the HTTP code path.

Messages here are raw transaction objects, not event envelopes, so the topic has its own
decoder (docs/interfaces.md § POS feed); handlers.py wires it into the worker.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.pos.ingest import ingest
from services.redemption_tracker.pos.schemas import PosTransaction, validate_one
from shared.bus import Message
from shared.consumer import PoisonMessage
from shared.http import validation_errors

PosMessage = tuple[str, PosTransaction]


def decode_pos_message(message: Message) -> PosMessage:
    """(store_id, transaction) of a message, or PoisonMessage naming the bad field (→ DLQ).

    The store comes from a `store_id` field or the message key; when both are there
    they must agree.
    """
    try:
        data: Any = json.loads(message.value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonMessage(f"body: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PoisonMessage("body: a pos.transactions message is one transaction object")
    field_store, key_store = data.get("store_id"), message.key
    if field_store is not None and key_store and field_store != key_store:
        raise PoisonMessage(f"store_id: {field_store!r} differs from the message key")
    if field_store is None:
        if not key_store:
            raise PoisonMessage("store_id: missing (no store_id field and no message key)")
        data = {**data, "store_id": key_store}
    try:
        tx = validate_one(data)
    except ValidationError as exc:
        raise PoisonMessage(
            "; ".join(f"{e['field']}: {e['message']}" for e in validation_errors(exc))
        ) from None
    assert tx.store_id is not None
    return tx.store_id, tx


def ingest_streamed(tracker: Tracker, decoded: PosMessage) -> None:
    """Ingest one streamed transaction exactly like a one-transaction HTTP batch."""
    store_id, tx = decoded
    ingest(tracker, store_id, [tx], source="kafka")
