"""Preparing a batch's transactions for writing: member hashes, items JSON, fingerprints, codes.

Everything a transaction needs before its row is written, for the whole batch in one loop
(docs/architecture.md § Hot paths): per transaction it is a handful of C calls, so the
loop's own overhead is a fair share of the cost and is kept out of helpers. `Firsts`
runs that loop as the COPY of the transactions takes each row.

- the member id as `shared.crypto.member_hash` gives it, byte for byte, but with the
  key derived once per secret and set up once (`shared.crypto.keyed_hmac`): one copy of
  the keyed state per member id;
- the items as the JSON pydantic gives (`TypeAdapter(list[Item]).dump_json`), through
  the serializer directly;
- the fingerprint a re-send is compared on: a SHA-256 of the transaction without the
  member id in clear;
- each presented code read offline (form and signature, pos/checks.py `read_code`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache

from pydantic import TypeAdapter

from services.redemption_tracker.pos.batch import BatchTx
from services.redemption_tracker.pos.checks import read_code
from services.redemption_tracker.pos.schemas import Item, PosTransaction
from shared.crypto import derive_key, keyed_hmac

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
    """Each (position in the request, transaction) prepared for writing, in order."""
    return list(prepare_each(pseudonym_secret, coupon_keys, ready))


def prepare_each(
    pseudonym_secret: str,
    coupon_keys: Sequence[bytes],
    ready: Iterable[tuple[int, PosTransaction]],
) -> Iterator[BatchTx]:
    """`prepare`, one transaction at a time, as its consumer asks for the next.

    The fingerprint's format never changes: stored transactions are compared on it.
    """
    digest, sha256, to_json = (
        keyed_hmac(member_key(pseudonym_secret)).digest,
        hashlib.sha256,
        ITEMS_JSON,
    )
    for index, tx in ready:
        member = tx.member_id
        mhash = digest(member.strip().upper().encode()).hex() if member else None
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
        yield BatchTx(
            index,
            tx,
            mhash,
            sha256(content.encode()).hexdigest(),
            [read_code(coupon_keys, c) for c in codes] if codes else [],
            items,
        )


class Firsts:
    """A batch's first occurrences of each transaction id, prepared once, in key order.

    The first pass prepares each transaction as its consumer takes it: the COPY of the
    transactions (pos/ingest.py) writes each row as soon as it is prepared, so the server
    inserts the rows sent so far while the rest are being prepared. Later passes (a
    retry, the results) get the same objects again.
    """

    def __init__(
        self,
        pseudonym_secret: str,
        coupon_keys: Sequence[bytes],
        firsts: Iterable[tuple[int, PosTransaction]],
    ) -> None:
        self._secret, self._keys = pseudonym_secret, coupon_keys
        self._ready = sorted(firsts, key=lambda it: it[1].transaction_id)
        self._done: list[BatchTx] | None = None

    def __len__(self) -> int:
        return len(self._ready)

    def in_key_order(self) -> Iterator[BatchTx]:
        """Each transaction by transaction id (the lock order), prepared on first use."""
        if self._done is not None:
            yield from self._done
            return
        done = []
        for t in prepare_each(self._secret, self._keys, self._ready):
            done.append(t)
            yield t
        self._done = done

    def in_request_order(self) -> list[BatchTx]:
        """Every transaction, prepared, in the order of the request."""
        return sorted(self.in_key_order(), key=lambda t: t.index)
