"""Key rotation: codes signed under a key in TENIN_PREVIOUS_SECRET_KEYS still verify; only
the current key signs; API keys hashed before the rotation keep working."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from shared.auth import ApiKey, authenticate, create_key
from shared.config import Settings
from shared.coupons import (
    CouponClaims,
    ForgedCode,
    claims_of,
    coupon_key,
    coupon_keys,
    issue_code,
    verify_code,
)

OLD, NEW, STRANGER = (secrets.token_urlsafe(48) for _ in range(3))
CLAIMS = CouponClaims(7, 1, 4242, datetime(2030, 1, 1, tzinfo=UTC))


def rotated() -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": "sqlite://",
            "TENIN_SECRET_KEY": NEW,
            "TENIN_PREVIOUS_SECRET_KEYS": OLD,
            "TENIN_PSEUDONYM_KEY": OLD,
        }
    )


def test_a_code_signed_under_the_previous_key_verifies_after_the_rotation() -> None:
    old_code = issue_code(coupon_key(OLD), CLAIMS)
    keys = coupon_keys(rotated().secret_keys)
    assert keys[0] == coupon_key(NEW)  # the current key comes first: it is the one that signs
    assert verify_code(keys, old_code) == CLAIMS
    assert verify_code(keys, issue_code(coupon_key(NEW), CLAIMS)) == CLAIMS
    with pytest.raises(ForgedCode):
        verify_code(coupon_key(NEW), old_code)  # without the previous key it is refused


def test_a_code_under_no_key_of_the_rotation_is_still_forged() -> None:
    keys = coupon_keys(rotated().secret_keys)
    with pytest.raises(ForgedCode):
        verify_code(keys, issue_code(coupon_key(STRANGER), CLAIMS))
    with pytest.raises(ValueError):
        verify_code((), issue_code(coupon_key(NEW), CLAIMS))


def test_a_stored_code_stays_readable_after_its_key_is_retired() -> None:
    assert claims_of(issue_code(coupon_key(STRANGER), CLAIMS)) == CLAIMS


def test_an_api_key_hashed_under_the_previous_key_still_authenticates() -> None:
    engine = create_engine("sqlite://")
    ApiKey.__table__.create(engine.execution_options(schema_translate_map={"auth": None}))
    with Session(engine.execution_options(schema_translate_map={"auth": None})) as session:
        before = create_key(session, OLD, "pos", "S001")
        session.flush()
        settings = rotated()
        principal = authenticate(session, settings.secret_keys, before)
        assert principal is not None and principal.store_id == "S001"
        assert authenticate(session, settings.secret_key, before) is None  # the new key alone
        assert authenticate(session, (STRANGER,), before) is None
        after = create_key(session, settings.secret_key, "marketer")
        session.flush()
        assert authenticate(session, settings.secret_keys, after) is not None
