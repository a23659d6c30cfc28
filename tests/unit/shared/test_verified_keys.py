"""A valid POS key is taken on trust for a few seconds (shared/auth.py `VerifiedKeys`).

docs/interfaces.md § Conventions: a till's requests do not each read the key table; a
revoked POS key is refused once its remembered verification lapses (`POS_KEY_MEMORY_S`),
other roles' keys and keys found invalid are looked up every time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, g
from sqlalchemy.orm import Session

from migrations.metadata import target_metadata
from shared.auth import (
    POS_KEY_MEMORY_S,
    Principal,
    VerifiedKeys,
    create_key,
    require_role,
    revoke_key,
)
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.http import register_error_handlers

SECRET = "a-server-secret-of-enough-length-0123456789"
POS = Principal("k1", "pos", "S001")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_pos_key_is_remembered_for_its_ttl_only() -> None:
    clock = Clock()
    known = VerifiedKeys(ttl_s=5.0, clock=clock)
    assert known.get("tn_k1_secret") is None
    known.remember("tn_k1_secret", POS)
    assert known.get("tn_k1_secret") == POS
    assert known.get("tn_k1_other") is None
    clock.now += 4.9
    assert known.get("tn_k1_secret") == POS
    clock.now += 0.1
    assert known.get("tn_k1_secret") is None


def test_only_pos_keys_are_remembered_and_never_with_no_ttl() -> None:
    known = VerifiedKeys(ttl_s=5.0)
    for role in ("marketer", "members", "admin"):
        known.remember(f"tn_{role}_secret", Principal(role, role, None))
        assert known.get(f"tn_{role}_secret") is None
    off = VerifiedKeys(ttl_s=0)
    off.remember("tn_k1_secret", POS)
    assert off.get("tn_k1_secret") is None


def test_the_memory_is_bounded_and_holds_no_key_in_clear() -> None:
    known = VerifiedKeys(ttl_s=5.0, max_keys=3)
    for i in range(3):
        known.remember(f"tn_k{i}_secret", POS)
    assert all(known.get(f"tn_k{i}_secret") == POS for i in range(3))
    assert not any(isinstance(k, str) or b"secret" in k for k in known._known)
    known.remember("tn_k3_secret", POS)  # the fourth starts the memory over
    assert known.get("tn_k3_secret") == POS
    assert known.get("tn_k0_secret") is None
    assert len(known._known) == 1


@pytest.fixture
def sessions() -> Callable[[], Session]:
    engine = make_engine("sqlite://")
    target_metadata.create_all(engine)
    return make_session_factory(engine)


def _app(sessions: Callable[[], Session], known: VerifiedKeys) -> tuple[Flask, list[int]]:
    """An app with one POS view; also the number of key-table look-ups made so far."""
    lookups = [0]

    def counted() -> Session:
        lookups[0] += 1
        return sessions()

    app = Flask(__name__)
    register_error_handlers(app)

    @app.get("/till")
    @require_role("pos", sessions=counted, secret=SECRET, verified=known)
    def till() -> Any:
        return {"store": g.principal.store_id}

    return app, lookups


def _get(app: Flask, key: str) -> int:
    return app.test_client().get("/till", headers={"Authorization": f"Bearer {key}"}).status_code


def test_a_till_key_is_looked_up_once_per_ttl_and_a_revocation_holds_after_it(
    sessions: Callable[[], Session],
) -> None:
    clock = Clock()
    app, lookups = _app(sessions, VerifiedKeys(ttl_s=POS_KEY_MEMORY_S, clock=clock))
    with unit_of_work(sessions) as s:
        key = create_key(s, SECRET, "pos", "S001")
    assert [_get(app, key) for _ in range(5)] == [200] * 5
    assert lookups == [1]
    with unit_of_work(sessions) as s:
        assert revoke_key(s, key.split("_")[1])
    assert _get(app, key) == 200  # still within the remembered verification
    clock.now += POS_KEY_MEMORY_S
    assert _get(app, key) == 401
    assert _get(app, key) == 401
    assert lookups == [3]  # a refused key is looked up each time


def test_a_key_refused_once_is_not_remembered_as_refused(
    sessions: Callable[[], Session],
) -> None:
    app, lookups = _app(sessions, VerifiedKeys())
    with unit_of_work(sessions) as s:
        key = create_key(s, SECRET, "pos", "S001")
    assert _get(app, key + "x") == 401
    assert _get(app, key) == 200
    assert _get(app, "tn_nope_nope") == 401
    assert lookups == [3]


def test_with_no_memory_a_revoked_key_is_refused_at_once(
    sessions: Callable[[], Session],
) -> None:
    app, lookups = _app(sessions, VerifiedKeys(ttl_s=0))
    with unit_of_work(sessions) as s:
        key = create_key(s, SECRET, "pos", "S001")
    assert _get(app, key) == 200
    with unit_of_work(sessions) as s:
        assert revoke_key(s, key.split("_")[1])
    assert _get(app, key) == 401
    assert lookups == [2]
