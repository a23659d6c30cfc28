"""Keys derived from TENIN_SECRET_KEY, and keyed hashes for pseudonymous ids.

One secret feeds several uses (coupon signatures, member-id hashes, ...). Each use
gets its own key, derived with a distinct label, so a value computed for one purpose
can never stand in for a value computed for another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

_PURPOSE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


class KeyedHmac:
    """HMAC-SHA256 under one key, set up once: each message is signed on a copy of the keyed
    state. On hot paths it replaces `hmac.digest(key, message, "sha256")`, which sets the key
    up again for every message and, in CPython, lets go of the GIL around OpenSSL's HMAC: on
    a thread sharing the GIL with a busy one, each call then waits to take it back (about
    1 ms a call against a busy thread, 2.9 µs alone; a copy's update and digest keep the GIL
    for messages under 2 KiB: 2.1 µs either way. docs/architecture.md § Hot paths)."""

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def digest(self, message: bytes) -> bytes:
        """HMAC-SHA256(key, message)."""
        signing = self._keyed.copy()
        signing.update(message)
        return signing.digest()


@lru_cache(maxsize=64)
def keyed_hmac(key: bytes) -> KeyedHmac:
    """The KeyedHmac of `key`, set up once per process (a few keys live at a time: the coupon
    keys in rotation, the holdout and member-id keys)."""
    return KeyedHmac(key)


def derive_key(secret_key: str, label: str) -> bytes:
    """Return the 32-byte key for `label`: HMAC-SHA256(secret_key, label)."""
    if not secret_key:
        raise ValueError("secret_key must not be empty")
    if not label:
        raise ValueError("label must not be empty")
    return hmac.digest(secret_key.encode("utf-8"), label.encode("utf-8"), hashlib.sha256)


def keyed_hash(secret_key: str, purpose: str, value: str) -> str:
    """Return hex HMAC-SHA256 of `value` under the key derived for `purpose`.

    Use it for pseudonymous ids (e.g. purpose "member-id"): equal inputs give equal
    hashes across services sharing TENIN_SECRET_KEY, and the value cannot be recovered
    or confirmed by anyone without the secret. The value is hashed exactly as given, so
    every caller must pass it in the same form (strip or case-fold before calling).
    """
    if not _PURPOSE.fullmatch(purpose):
        raise ValueError(f"purpose must match {_PURPOSE.pattern!r}, got {purpose!r}")
    return _purpose_hmac(secret_key, purpose).digest(value.encode("utf-8")).hex()


@lru_cache(maxsize=64)
def _purpose_hmac(secret_key: str, purpose: str) -> KeyedHmac:
    return KeyedHmac(derive_key(secret_key, f"tenin/keyed-hash/{purpose}/v1"))


def member_hash(secret_key: str, member_id: str) -> str:
    """The keyed hash a loyalty member id travels as (docs/architecture.md § Invariants); one canonical form."""
    return keyed_hash(secret_key, "member-id", member_id.strip().upper())


def pseudonym(secret_key: str, purpose: str, value: str, prefix: str, length: int = 20) -> str:
    """A short, stable pseudonymous id, e.g. the customer_id of a messaging user."""
    return f"{prefix}{keyed_hash(secret_key, purpose, value)[:length]}"
