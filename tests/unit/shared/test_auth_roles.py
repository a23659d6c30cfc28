"""The `members` role (docs/interfaces.md § Conventions): the member site's key."""

from __future__ import annotations

import pytest

from migrations.metadata import target_metadata
from shared.auth import ROLES, authenticate, create_key
from shared.db import make_engine, make_session_factory, unit_of_work
from tenin.cli import build_parser

SERVER_SECRET = "a-server-secret-of-enough-length-0123456789"


@pytest.mark.parametrize("role", ["marketer", "pos", "members", "admin"])
def test_tenin_keys_create_accepts_every_role(role: str) -> None:
    assert role in ROLES
    assert build_parser().parse_args(["keys", "create", "--role", role]).role == role


def test_a_members_key_authenticates_with_its_role() -> None:
    engine = make_engine("sqlite://")
    target_metadata.create_all(engine)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as s:
        key = create_key(s, SERVER_SECRET, "members")
    with sessions() as s:
        principal = authenticate(s, SERVER_SECRET, key)
    assert principal is not None and principal.role == "members"
