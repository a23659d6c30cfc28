"""Signed coupon codes: round trips, typo detection, forgery detection, key derivation."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.coupons import (
    CODE_LENGTH,
    EPOCH,
    CodeRejected,
    CouponClaims,
    ForgedCode,
    UnknownCode,
    coupon_key,
    issue_code,
    normalize_code,
    round_up_to_hour,
    verify_code,
)
from shared.crypto import keyed_hash

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CANONICAL = re.compile(r"TN-[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}-[0-9A-HJKMNP-TV-Z]{3}")
KEY = coupon_key("unit-test-secret")
OTHER_KEY = coupon_key("another-secret")
MAX_EXPIRY = EPOCH + timedelta(hours=2**18 - 1)
SEED = 20261129


# --- an independent model of the published format, as a till vendor (or an attacker
# --- who knows the algorithm but not the key) would write it from the docstring.


def gf32_mul(a: int, b: int) -> int:
    """Multiply in GF(2)[x] / (x^5 + x^2 + 1) by shift-and-add."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        b >>= 1
        a <<= 1
        if a & 0b100000:
            a ^= 0b100101
    return product


def reference_check(values: list[int]) -> int:
    """Check symbol: sum of a^(i+1) * v_i over GF(32), a = x."""
    check, weight = 0, 1
    for v in values:
        weight = gf32_mul(weight, 2)
        check ^= gf32_mul(weight, v)
    return check


def decode_body(code: str) -> tuple[int, int]:
    """Return (payload, tag) read straight from the 22 data symbols of a canonical code."""
    body = code.replace("-", "")[2:]
    value = 0
    for ch in body[:22]:
        value = (value << 5) | ALPHABET.index(ch)
    return value >> 44, value & ((1 << 44) - 1)


def encode_body(payload: int, tag: int) -> str:
    """Re-encode a (payload, tag) with a correct check symbol, as the attacker would."""
    value = (payload << 44) | tag
    values = [(value >> (5 * (21 - i))) & 31 for i in range(22)]
    body = "".join(ALPHABET[v] for v in values) + ALPHABET[reference_check(values)]
    return "TN-" + "-".join(body[i : i + 5] for i in range(0, 23, 5))


def random_claims(rng: random.Random) -> CouponClaims:
    return CouponClaims(
        campaign_no=rng.randrange(2**20),
        offer_index=rng.randrange(16),
        serial=rng.randrange(2**24),
        expires_at=EPOCH + timedelta(hours=rng.randrange(2**18)),
    )


def with_symbol(code: str, index: int, ch: str) -> str:
    return code[:index] + ch + code[index + 1 :]


def symbol_positions(code: str) -> list[int]:
    """Indexes of the 23 code symbols inside a canonical code (prefix and hyphens skipped)."""
    return [i for i, ch in enumerate(code) if i >= 3 and ch != "-"]


@pytest.fixture(scope="module")
def sample_codes() -> list[tuple[CouponClaims, str]]:
    rng = random.Random(SEED)
    claims = [random_claims(rng) for _ in range(8)]
    claims.append(CouponClaims(0, 0, 0, EPOCH))
    claims.append(CouponClaims(2**20 - 1, 15, 2**24 - 1, MAX_EXPIRY))
    return [(c, issue_code(KEY, c)) for c in claims]


# --- round trips and format


def test_random_claims_round_trip_in_canonical_form() -> None:
    rng = random.Random(SEED)
    seen: set[str] = set()
    for _ in range(3000):
        claims = random_claims(rng)
        code = issue_code(KEY, claims)
        assert CANONICAL.fullmatch(code), code
        assert len(code) == CODE_LENGTH == 30
        assert normalize_code(code) == code
        assert verify_code(KEY, code) == claims
        seen.add(code)
    assert len(seen) == 3000


def test_boundary_claims_round_trip(sample_codes: list[tuple[CouponClaims, str]]) -> None:
    for claims, code in sample_codes:
        got = verify_code(KEY, code)
        assert got == claims
        assert got.expires_at.tzinfo is UTC


def test_issuing_is_deterministic_and_check_symbol_matches_published_algorithm(
    sample_codes: list[tuple[CouponClaims, str]],
) -> None:
    for claims, code in sample_codes:
        assert issue_code(KEY, claims) == code
        payload, tag = decode_body(code)
        assert encode_body(payload, tag) == code


def test_payload_is_the_documented_bit_layout() -> None:
    claims = CouponClaims(0xABCDE, 0x7, 0x123456, EPOCH + timedelta(hours=0x2F0F0))
    payload, tag = decode_body(issue_code(KEY, claims))
    assert payload == (((0xABCDE << 4 | 0x7) << 24 | 0x123456) << 18) | 0x2F0F0
    digest = hmac.digest(KEY, b"\x01" + payload.to_bytes(9, "big"), hashlib.sha256)
    assert tag == int.from_bytes(digest[:6], "big") >> 4


# --- mistyped codes: caught by the check symbol, without the key


def test_every_single_symbol_substitution_is_an_unknown_code(
    sample_codes: list[tuple[CouponClaims, str]],
) -> None:
    for _, code in sample_codes:
        for i in symbol_positions(code):
            for ch in ALPHABET:
                if ch == code[i]:
                    continue
                typo = with_symbol(code, i, ch)
                with pytest.raises(UnknownCode) as caught:
                    verify_code(KEY, typo)
                assert caught.value.reason == "unknown_code", typo
                with pytest.raises(UnknownCode):
                    normalize_code(typo)


def test_every_transposition_of_two_symbols_is_an_unknown_code(
    sample_codes: list[tuple[CouponClaims, str]],
) -> None:
    checked = 0
    for _, code in sample_codes:
        positions = symbol_positions(code)
        for a, i in enumerate(positions):
            for j in positions[a + 1 :]:
                if code[i] == code[j]:
                    continue
                swapped = with_symbol(with_symbol(code, i, code[j]), j, code[i])
                with pytest.raises(UnknownCode):
                    verify_code(KEY, swapped)
                checked += 1
    assert checked > 1500


@pytest.mark.parametrize("bad", ["U", "*", "~", "$", "=", "!", "é", "ü", "ı", "\x00"])
def test_characters_outside_the_alphabet_are_unknown(
    bad: str, sample_codes: list[tuple[CouponClaims, str]]
) -> None:
    # "ı" (dotless i) upper-cases to "I", which would read as 1: only ASCII is decoded.
    assert any("1" in code[3:] for _, code in sample_codes)
    for _, code in sample_codes:
        for i in symbol_positions(code):
            with pytest.raises(UnknownCode):
                verify_code(KEY, with_symbol(code, i, bad))


def test_wrong_length_prefix_or_type_is_unknown(
    sample_codes: list[tuple[CouponClaims, str]],
) -> None:
    _, code = sample_codes[0]
    body = code.replace("-", "")
    malformed = [
        "",
        "TN-",
        code[:-1],  # a symbol dropped
        code + "0",  # a symbol added
        body[2:] + "0",  # ... after a valid code without its prefix
        body[:10] + body[11:],
        "XX" + body[2:],  # wrong prefix, right length
        "TNTN" + body[2:],
        code * 4,
        code + " " * 1000,  # refused before any Unicode normalization work
    ]
    for text in malformed:
        with pytest.raises(UnknownCode):
            verify_code(KEY, text)
    for not_text in [None, 12345, b"TN-0000"]:
        with pytest.raises(UnknownCode):
            verify_code(KEY, not_text)  # type: ignore[arg-type]


# --- forged codes: well formed, valid check symbol, wrong signature


def test_flipping_any_tag_bit_with_a_recomputed_check_symbol_is_forged(
    sample_codes: list[tuple[CouponClaims, str]],
) -> None:
    for _, code in sample_codes:
        payload, tag = decode_body(code)
        for bit in range(44):
            forged = encode_body(payload, tag ^ (1 << bit))
            assert normalize_code(forged) == forged  # passes the keyless checks
            with pytest.raises(ForgedCode) as caught:
                verify_code(KEY, forged)
            assert caught.value.reason == "forged"
        for shift in range(0, 44, 8):  # a whole byte of the tag replaced
            with pytest.raises(ForgedCode):
                verify_code(KEY, encode_body(payload, tag ^ (0xFF << shift) & ((1 << 44) - 1)))


def test_editing_the_claims_with_a_recomputed_check_symbol_is_forged(
    sample_codes: list[tuple[CouponClaims, str]],
) -> None:
    for _, code in sample_codes:
        payload, tag = decode_body(code)
        for bit in range(66):  # e.g. a later expiry, another serial or campaign
            with pytest.raises(ForgedCode):
                verify_code(KEY, encode_body(payload ^ (1 << bit), tag))


def test_codes_made_up_with_a_valid_check_symbol_are_forged() -> None:
    rng = random.Random(SEED)
    for _ in range(500):
        with pytest.raises(ForgedCode):
            verify_code(KEY, encode_body(rng.getrandbits(66), rng.getrandbits(44)))


def test_a_code_issued_under_another_key_is_forged(
    sample_codes: list[tuple[CouponClaims, str]],
) -> None:
    for claims, code in sample_codes:
        foreign = issue_code(OTHER_KEY, claims)
        assert foreign != code
        assert verify_code(OTHER_KEY, foreign) == claims
        with pytest.raises(ForgedCode):
            verify_code(KEY, foreign)


def test_tags_are_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch, sample_codes: list[tuple[CouponClaims, str]]
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    _, code = sample_codes[0]
    verify_code(KEY, code)
    payload, tag = decode_body(code)
    with pytest.raises(ForgedCode):
        verify_code(KEY, encode_body(payload, tag ^ 1))
    assert len(calls) == 2


def test_both_rejections_are_code_rejected() -> None:
    assert issubclass(UnknownCode, CodeRejected) and issubclass(ForgedCode, CodeRejected)
    assert not issubclass(UnknownCode, ForgedCode) and not issubclass(ForgedCode, UnknownCode)
    with pytest.raises(CodeRejected) as caught:
        verify_code(KEY, "TN-nonsense")
    assert caught.value.reason == "unknown_code"


# --- what customers and tills actually type


def test_sloppy_spellings_are_accepted_and_normalized() -> None:
    rng = random.Random(SEED)
    claims, code = next(
        (c, code)
        for c in (random_claims(rng) for _ in range(10_000))
        if "0" in (code := issue_code(KEY, c)) and "1" in code[3:]
    )
    body = code.replace("-", "")
    fullwidth = "".join(chr(ord(ch) + 0xFEE0) for ch in code)  # what a Japanese IME types
    spellings = [
        code.lower(),
        body,
        body.lower(),
        body[2:],  # prefix left off
        code.replace("0", "O").replace("1", "I"),
        code.replace("0", "o").replace("1", "l"),
        code.replace("1", "L"),
        " ".join(body[i : i + 4] for i in range(0, len(body), 4)),
        f"  {code}\n",
        code.replace("-", " - "),
        fullwidth,
        code.replace("-", "ー"),
        code.replace("-", "\u2013"),
    ]
    for text in spellings:
        assert normalize_code(text) == code, text
        assert verify_code(KEY, text) == claims, text


# --- bounds and expiry


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("campaign_no", 2**20),
        ("campaign_no", -1),
        ("offer_index", 16),
        ("offer_index", -1),
        ("serial", 2**24),
        ("serial", -1),
        ("serial", True),
        ("serial", 1.0),
        ("campaign_no", "7"),
        ("expires_at", MAX_EXPIRY + timedelta(hours=1)),
        ("expires_at", EPOCH - timedelta(hours=1)),
        ("expires_at", datetime(2026, 11, 30, 15)),  # naive
        ("expires_at", datetime(2026, 11, 30, 15, 30, tzinfo=UTC)),  # not on the hour
        ("expires_at", datetime(2026, 11, 30, 15, 0, 1, tzinfo=UTC)),
        ("expires_at", datetime(2026, 11, 30, 15, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
        ("expires_at", "2026-11-30T15:00:00Z"),
    ],
)
def test_out_of_range_claims_are_refused_at_issue_time(field: str, value: object) -> None:
    fields: dict[str, object] = {
        "campaign_no": 1,
        "offer_index": 0,
        "serial": 1,
        "expires_at": datetime(2026, 11, 30, 15, tzinfo=UTC),
    }
    assert verify_code(KEY, issue_code(KEY, CouponClaims(**fields)))  # type: ignore[arg-type]
    fields[field] = value
    with pytest.raises(ValueError):
        issue_code(KEY, CouponClaims(**fields))  # type: ignore[arg-type]


def test_expiry_round_trips_to_the_hour_from_any_time_zone() -> None:
    jst = timezone(timedelta(hours=9))
    local = datetime(2026, 12, 1, 0, tzinfo=jst)  # midnight in Tokyo
    got = verify_code(KEY, issue_code(KEY, CouponClaims(5, 1, 42, local))).expires_at
    assert got == local
    assert got.tzinfo is UTC
    assert (got.year, got.month, got.day, got.hour, got.minute) == (2026, 11, 30, 15, 0)


def test_round_up_to_hour_never_shortens_validity() -> None:
    on_hour = datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert round_up_to_hour(on_hour) == on_hour
    assert round_up_to_hour(on_hour + timedelta(microseconds=1)) == on_hour + timedelta(hours=1)
    assert round_up_to_hour(on_hour + timedelta(minutes=59)) == on_hour + timedelta(hours=1)
    jst = datetime(2026, 12, 1, 0, 20, tzinfo=timezone(timedelta(hours=9)))
    assert round_up_to_hour(jst) == datetime(2026, 11, 30, 16, tzinfo=UTC)
    with pytest.raises(ValueError):
        round_up_to_hour(datetime(2026, 11, 30, 15))
    expires = round_up_to_hour(datetime(2026, 11, 30, 15, 7, tzinfo=UTC) + timedelta(hours=72))
    assert verify_code(KEY, issue_code(KEY, CouponClaims(1, 2, 3, expires))).expires_at == expires


# --- keys


def test_coupon_key_is_hmac_of_the_secret_with_its_label() -> None:
    expected = hmac.new(b"unit-test-secret", b"tenin/coupon-signing/v1", hashlib.sha256).digest()
    assert coupon_key("unit-test-secret") == expected
    assert coupon_key("unit-test-secret") != coupon_key("unit-test-secreT")
    with pytest.raises(ValueError):
        coupon_key("")


def test_keys_that_are_too_short_are_refused() -> None:
    claims = CouponClaims(1, 0, 1, EPOCH)
    for bad in [b"", b"short", "a str key of enough length"]:
        with pytest.raises(ValueError):
            issue_code(bad, claims)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            verify_code(bad, issue_code(KEY, claims))  # type: ignore[arg-type]


def test_keyed_hash_is_stable_and_separated_by_purpose_and_secret() -> None:
    member = keyed_hash("unit-test-secret", "member-id", "M0001")
    assert member == keyed_hash("unit-test-secret", "member-id", "M0001")
    assert re.fullmatch(r"[0-9a-f]{64}", member)
    derived = hmac.new(b"unit-test-secret", b"tenin/keyed-hash/member-id/v1", hashlib.sha256)
    assert member == hmac.new(derived.digest(), b"M0001", hashlib.sha256).hexdigest()
    assert member != keyed_hash("unit-test-secret", "member-id", "M0002")
    assert member != keyed_hash("unit-test-secret", "line-user-id", "M0001")
    assert member != keyed_hash("another-secret", "member-id", "M0001")
    assert member != hmac.new(KEY, b"M0001", hashlib.sha256).hexdigest()
    for purpose in ["", "Member", "a/b", "x" * 65]:
        with pytest.raises(ValueError):
            keyed_hash("unit-test-secret", purpose, "M0001")
