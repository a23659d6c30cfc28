"""API keys with roles (docs/interfaces.md § Conventions): random, shown once, stored hashed, bound to a store.

A key looks like `tn_<prefix>_<secret>`. The prefix finds the row; the secret's keyed
hash is compared with `hmac.compare_digest`, so response time does not depend on how
much of the secret matched.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar, cast

from flask import g, request
from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import Base, UTCDateTime, utcnow
from shared.http import ProblemError

Role = Literal["marketer", "pos", "admin"]
ROLES: tuple[Role, ...] = ("marketer", "pos", "admin")


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = {"schema": "auth"}

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    store_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, role and (for POS keys) store."""

    key_id: str
    role: str
    store_id: str | None


def _hash_secret(server_secret: str, secret: str) -> str:
    key = hmac.new(server_secret.encode(), b"tenin/api-keys/v1", hashlib.sha256).digest()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def create_key(
    session: Session,
    server_secret: str,
    role: str,
    store_id: str | None = None,
    label: str | None = None,
) -> str:
    """Create a key and return its plaintext (the only time it is ever available)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "pos" and not store_id:
        raise ValueError("a pos key must be bound to a store (--store)")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            key_id=key_id,
            secret_hash=_hash_secret(server_secret, secret),
            role=role,
            store_id=store_id,
            label=label,
        )
    )
    return f"tn_{key_id}_{secret}"


def revoke_key(session: Session, key_id: str) -> bool:
    """Revoke a key by id; False if there is no such active key."""
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True


def list_keys(session: Session) -> list[ApiKey]:
    """Every key (hashes only), newest first."""
    return list(session.execute(select(ApiKey).order_by(ApiKey.created_at.desc())).scalars())


# Compared against when the key id is unknown, so both paths do the same work.
_DUMMY_HASH = "0" * 64


def authenticate(session: Session, server_secret: str, presented: str) -> Principal | None:
    """The principal for a presented key, or None."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "tn":
        _hash_secret(server_secret, presented)
        return None
    _, key_id, secret = parts
    row = session.get(ApiKey, key_id)
    expected = row.secret_hash if row is not None else _DUMMY_HASH
    matches = hmac.compare_digest(expected, _hash_secret(server_secret, secret))
    if row is None or not matches or row.revoked_at is not None:
        return None
    return Principal(key_id=row.key_id, role=row.role, store_id=row.store_id)


F = TypeVar("F", bound=Callable[..., Any])


def require_role(*roles: str, sessions: Callable[[], Session], secret: str) -> Callable[[F], F]:
    """Decorator: 401 without a valid key, 403 when its role is not allowed (admin always is)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer ") or not header[7:].strip():
                raise ProblemError(
                    401, "Unauthorized", "an API key is required (Authorization: Bearer <key>)"
                )
            with sessions() as session:
                principal = authenticate(session, secret, header[7:].strip())
            if principal is None:
                raise ProblemError(401, "Unauthorized", "the API key is not valid")
            if principal.role != "admin" and principal.role not in roles:
                raise ProblemError(
                    403, "Forbidden", f"this endpoint needs a {' or '.join(roles)} key"
                )
            g.principal = principal
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator
