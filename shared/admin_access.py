"""Who may read operator-only endpoints on a public port (docs/interfaces.md § Operator interface)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flask import request
from sqlalchemy.orm import Session

from shared.auth import authenticate, bearer_token
from shared.http import MetricsAccess


def admin_key_given(sessions: Callable[[], Session], secret: str | Sequence[str]) -> MetricsAccess:
    """A check that the current request carries a valid, unrevoked admin key."""

    def given() -> bool:
        token = bearer_token(request.headers.get("Authorization", ""))
        if token is None:
            return False
        with sessions() as session:
            principal = authenticate(session, secret, token)
        return principal is not None and principal.role == "admin"

    return given
