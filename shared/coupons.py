"""Signed, human-typeable coupon codes that a till can verify without a database.

A code carries its own claims (campaign, offer, serial, expiry) and a truncated
HMAC-SHA256 tag over them, so a forged code is caught offline, and a check character,
so a mistyped code is caught even without the key.

Layout (110 bits, then one check symbol)::

    campaign_no:20 | offer_index:4 | serial:24 | expires_hour:18 | tag:44

The 110 bits are written as 22 Crockford base32 symbols, most significant first, then
one check symbol, prefixed and grouped for reading aloud::

    TN-8K5P5-0MRD0-Y5ZP1-8TCJH-59D        (30 characters; the last symbol, D, is the check)

The check symbol is a weighted sum over GF(32) (a one-symbol Reed-Solomon parity):
symbol i has weight a^(i+1), the check symbol weight 1, where a generates GF(32)*.
All 23 weights are distinct and non-zero, so every single-symbol substitution and
every transposition of two symbols (adjacent or not) changes the sum and is caught.
It stays inside the 32-symbol alphabet, unlike Crockford's mod-37 check, whose extra
symbols (* ~ $ = U) are awkward to say aloud and to type on a till.

The claims are signed, not encrypted: anyone can read a code's campaign number,
serial and expiry. Only the holder of the key can make a code that verifies.
`verify_code` does not look at the clock; expiry is the caller's decision.

Key rotation: `verify_code` takes the signing key or the keys of a rotation (current
first, then those in TENIN_PREVIOUS_SECRET_KEYS, see `coupon_keys`); a code verifies
under any of them, and `issue_code` only ever signs with the current one.
"""

from __future__ import annotations

import hmac
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from shared.crypto import derive_key, keyed_hmac

__all__ = [
    "CODE_LENGTH",
    "EPOCH",
    "CodeRejected",
    "CouponClaims",
    "ForgedCode",
    "UnknownCode",
    "claims_of",
    "coupon_key",
    "coupon_keys",
    "issue_code",
    "normalize_code",
    "round_up_to_hour",
    "verify_canonical",
    "verify_code",
]

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)

_CAMPAIGN_BITS, _OFFER_BITS, _SERIAL_BITS, _HOUR_BITS, _TAG_BITS = 20, 4, 24, 18, 44
_PAYLOAD_BITS = _CAMPAIGN_BITS + _OFFER_BITS + _SERIAL_BITS + _HOUR_BITS  # 66
_DATA_SYMBOLS = (_PAYLOAD_BITS + _TAG_BITS) // 5  # 22, no padding bits
assert (_PAYLOAD_BITS + _TAG_BITS) % 5 == 0
_PREFIX = "TN"
_GROUP = 5
CODE_LENGTH = len(_PREFIX) + 1 + (_DATA_SYMBOLS + 1) + (_DATA_SYMBOLS // _GROUP)  # 30

# Bumping this byte (with a new layout) keeps old and new tags from ever colliding.
_FORMAT_VERSION = b"\x01"
_MIN_KEY_BYTES = 16

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {ch: i for i, ch in enumerate(_ALPHABET)} | {"I": 1, "L": 1, "O": 0}
# Separators a customer or a Japanese IME may produce; removed before decoding.
_SEPARATORS = str.maketrans("", "", "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc")
_MAX_INPUT_CHARS = 100


def _gf32_tables() -> list[list[int]]:
    """Return WEIGHTED[i][v] = a^(i+1) * v in GF(32) = GF(2)[x] / (x^5 + x^2 + 1)."""
    exp = [1]
    for _ in range(30):
        nxt = exp[-1] << 1
        exp.append(nxt ^ 0b100101 if nxt & 0b100000 else nxt)
    log = {e: i for i, e in enumerate(exp)}
    assert len(log) == 31  # x is primitive: its powers are all 31 non-zero elements

    def mul(a: int, b: int) -> int:
        return 0 if a == 0 or b == 0 else exp[(log[a] + log[b]) % 31]

    return [[mul(exp[i + 1], v) for v in range(32)] for i in range(_DATA_SYMBOLS)]


_WEIGHTED = _gf32_tables()


class CodeRejected(Exception):
    """A coupon code that must not be honoured.

    `reason` is one of the POS feed's rejection reasons (docs/interfaces.md § POS feed).
    """

    reason: ClassVar[str] = "unknown_code"


class UnknownCode(CodeRejected):
    """Not a code at all: bad characters, wrong length, or failed check symbol."""

    reason: ClassVar[str] = "unknown_code"


class ForgedCode(CodeRejected):
    """Well formed with a valid check symbol, but the signature does not match."""

    reason: ClassVar[str] = "forged"


@dataclass(frozen=True)
class CouponClaims:
    """What a coupon code says about itself."""

    campaign_no: int
    offer_index: int
    serial: int
    expires_at: datetime  # UTC, aware, on a whole hour


def coupon_key(secret_key: str) -> bytes:
    """Return the coupon-signing key derived from TENIN_SECRET_KEY."""
    return derive_key(secret_key, "tenin/coupon-signing/v1")


def coupon_keys(secret_keys: Sequence[str]) -> tuple[bytes, ...]:
    """The coupon keys of a rotation: the current secret's first (it signs), then the previous."""
    return tuple(coupon_key(secret) for secret in secret_keys)


def round_up_to_hour(moment: datetime) -> datetime:
    """Return the first whole UTC hour at or after an aware `moment` (codes keep hours)."""
    if moment.utcoffset() is None:
        raise ValueError("moment must be timezone-aware")
    since = moment - EPOCH
    whole = since // _HOUR
    return EPOCH + _HOUR * (whole if since % _HOUR == timedelta(0) else whole + 1)


def issue_code(key: bytes, claims: CouponClaims) -> str:
    """Return the signed code for `claims`, in canonical form."""
    _check_key(key)
    payload = _pack(claims)
    value = (payload << _TAG_BITS) | _tag(key, payload)
    symbols = [(value >> (5 * (_DATA_SYMBOLS - 1 - i))) & 31 for i in range(_DATA_SYMBOLS)]
    return _format(symbols + [_check_symbol(symbols)])


def verify_code(key: bytes | Sequence[bytes], code: str) -> CouponClaims:
    """Return the claims of a genuine code; raise UnknownCode or ForgedCode otherwise.

    `key` is one key or the keys of a rotation (`coupon_keys`): any of them may have signed.
    """
    keys = _keys(key)
    return _verified(keys, _parse(code))


def verify_canonical(key: bytes | Sequence[bytes], code: str) -> tuple[str, CouponClaims]:
    """`(normalize_code(code), verify_code(key, code))`, reading the code once."""
    keys = _keys(key)
    symbols = _parse(code)
    return _format(symbols), _verified(keys, symbols)


def _keys(key: bytes | Sequence[bytes]) -> list[bytes]:
    """The keys a code may be signed with, each checked (ValueError when none or unfit)."""
    keys = [key] if isinstance(key, bytes) else list(key)
    if not keys:
        raise ValueError("no coupon key given")
    for k in keys:
        _check_key(k)
    return keys


def _verified(keys: list[bytes], symbols: list[int]) -> CouponClaims:
    """The claims of parsed symbols whose tag one of the keys made; ForgedCode otherwise."""
    payload, tag = _split(symbols)
    for k in keys:
        if hmac.compare_digest(tag.to_bytes(6, "big"), _tag(k, payload).to_bytes(6, "big")):
            return _unpack(payload)
    raise ForgedCode("signature does not match")


def claims_of(stored_code: str) -> CouponClaims:
    """The claims a code states, WITHOUT checking its signature.

    Only for codes tenin verified on arrival and stored (e.g. a voided redemption's
    expiry): they stay readable after the key that signed them is retired.
    """
    return _unpack(_split(_parse(stored_code))[0])


def normalize_code(code: str) -> str:
    """Return the canonical form of `code` (how codes are stored); raise UnknownCode.

    Accepts lower case, missing or extra hyphens and spaces, full-width characters,
    I/L for 1 and O for 0, and a missing "TN" prefix. Checks the check symbol but
    not the signature.
    """
    return _format(_parse(code))


def _split(symbols: list[int]) -> tuple[int, int]:
    """(payload, tag) of a parsed code."""
    value = 0
    for s in symbols[:_DATA_SYMBOLS]:
        value = (value << 5) | s
    return value >> _TAG_BITS, value & ((1 << _TAG_BITS) - 1)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"coupon key must be at least {_MIN_KEY_BYTES} bytes; use coupon_key()")


def _field(name: str, value: object, bits: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name} must be in [0, {1 << bits}), got {value}")
    return value


def _pack(claims: CouponClaims) -> int:
    expires_at = claims.expires_at
    if not isinstance(expires_at, datetime) or expires_at.utcoffset() is None:
        raise ValueError("expires_at must be a timezone-aware datetime")
    since = expires_at - EPOCH
    if since % _HOUR != timedelta(0):
        raise ValueError(
            f"expires_at must be on a whole hour (see round_up_to_hour), got {expires_at}"
        )
    hours = _field("expires_at hours since 2024-01-01T00:00Z", since // _HOUR, _HOUR_BITS)
    payload = _field("campaign_no", claims.campaign_no, _CAMPAIGN_BITS)
    payload = (payload << _OFFER_BITS) | _field("offer_index", claims.offer_index, _OFFER_BITS)
    payload = (payload << _SERIAL_BITS) | _field("serial", claims.serial, _SERIAL_BITS)
    return (payload << _HOUR_BITS) | hours


def _unpack(payload: int) -> CouponClaims:
    hours = payload & ((1 << _HOUR_BITS) - 1)
    payload >>= _HOUR_BITS
    serial = payload & ((1 << _SERIAL_BITS) - 1)
    payload >>= _SERIAL_BITS
    offer_index = payload & ((1 << _OFFER_BITS) - 1)
    campaign_no = payload >> _OFFER_BITS
    return CouponClaims(campaign_no, offer_index, serial, EPOCH + _HOUR * hours)


def _tag(key: bytes, payload: int) -> int:
    message = _FORMAT_VERSION + payload.to_bytes((_PAYLOAD_BITS + 7) // 8, "big")
    digest = keyed_hmac(key).digest(message)
    return int.from_bytes(digest[:6], "big") >> (48 - _TAG_BITS)


def _check_symbol(symbols: list[int]) -> int:
    check = 0
    for row, s in zip(_WEIGHTED, symbols, strict=True):
        check ^= row[s]
    return check


def _parse(code: object) -> list[int]:
    """Return the 23 symbol values of a well-formed code whose check symbol holds."""
    if not isinstance(code, str) or len(code) > _MAX_INPUT_CHARS:
        raise UnknownCode("not a coupon code")
    text = "".join(unicodedata.normalize("NFKC", code).split()).translate(_SEPARATORS)
    if not text.isascii():
        raise UnknownCode("code contains characters outside the code alphabet")
    text = text.upper()
    if len(text) == _DATA_SYMBOLS + 1 + len(_PREFIX) and text.startswith(_PREFIX):
        text = text[len(_PREFIX) :]
    if len(text) != _DATA_SYMBOLS + 1:
        raise UnknownCode(f"code must have {_DATA_SYMBOLS + 1} symbols after the prefix")
    try:
        symbols = [_DECODE[ch] for ch in text]
    except KeyError as exc:
        raise UnknownCode(f"{exc.args[0]!r} is not a code character") from None
    if _check_symbol(symbols[:_DATA_SYMBOLS]) != symbols[_DATA_SYMBOLS]:
        raise UnknownCode("check character does not match (mistyped code?)")
    return symbols


def _format(symbols: list[int]) -> str:
    body = "".join(_ALPHABET[s] for s in symbols)
    groups = [body[i : i + _GROUP] for i in range(0, len(body), _GROUP)]
    return "-".join([_PREFIX, *groups])
