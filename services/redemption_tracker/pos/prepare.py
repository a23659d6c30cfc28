"""Preparing a batch's transactions for writing: member hashes, items JSON, fingerprints, codes.

Everything a transaction needs before the database transaction, for the whole batch in
one loop (docs/architecture.md § Hot paths): per transaction it is a handful of C calls,
so the loop's own overhead is a fair share of the cost and is kept out of helpers.

- the member id as `shared.crypto.member_hash` gives it, byte for byte, but with the
  key derived once per secret and one C `hmac.digest` per member id;
- the items as the JSON pydantic gives (`TypeAdapter(list[Item]).dump_json`), through
  the serializer directly;
- the fingerprint a re-send is compared on: a SHA-256 of the transaction without the
  member id in clear;
- each presented code read offline (form and signature, pos/checks.py `read_code`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from functools import lru_cache

from pydantic import TypeAdapter

from services.redemption_tracker.pos.batch import BatchTx
from services.redemption_tracker.pos.checks import read_code
from services.redemption_tracker.pos.schemas import Item, PosTransaction
from shared.crypto import derive_key

ITEMS = TypeAdapter(list[Item])
ITEMS_JSON = ITEMS.serializer.to_json  # `ITEMS.dump_json` without its per-call wrapper


@lru_cache(maxsize=8)
def member_key(secret: str) -> bytes:
    """The key `shared.crypto.member_hash` derives for `secret`, derived once."""
    return derive_key(secret, "tenin/keyed-hash/member-id/v1")


def prepare(
    pseudonym_secret: str,
    coupon_keys: Sequence[bytes],
    ready: list[tuple[int, PosTransaction]],
) -> list[BatchTx]:
    """Each (position in the request, transaction) prepared for writing, in order.

    The fingerprint's format never changes: stored transactions are compared on it.
    """
    key = member_key(pseudonym_secret)
    digest, sha256, to_json = hmac.digest, hashlib.sha256, ITEMS_JSON
    out = []
    for index, tx in ready:
        member = tx.member_id
        mhash = digest(key, member.strip().upper().encode(), "sha256").hex() if member else None
        items = to_json(tx.items).decode()
        codes = tx.coupon_codes
        content = "|".join(
            (
                tx.transaction_id,
                tx.occurred_at.isoformat(),
                tx.currency,
                str(tx.total),
                mhash or "",
                "\x1f".join(codes),
                items,
            )
        )
        out.append(
            BatchTx(
                index,
                tx,
                mhash,
                sha256(content.encode()).hexdigest(),
                [read_code(coupon_keys, c) for c in codes] if codes else [],
                items,
            )
        )
    return out
