"""API keys with roles (docs/interfaces.md § Conventions): random, shown once, stored hashed, bound to a store.

A key looks like `tn_<prefix>_<secret>`. The prefix finds the row; the secret's keyed
hash is compared with `hmac.compare_digest`, so response time does not depend on how
much of the secret matched.

`require_role` guards a view: `Authorization: Bearer <key>` (scheme case-insensitive; a
401 carries `WWW-Authenticate: Bearer`), then the key's rate-limit buckets when the app
has `install_rate_limits` (429, docs/interfaces.md § Rate limits), then the role (403).
A POS key found valid is remembered for `POS_KEY_MEMORY_S` seconds (`VerifiedKeys`), so
a till's stream of requests does not read the key table for each one; a revocation
therefore takes up to that long to reach a process (docs/interfaces.md § Conventions).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar, cast

from flask import Flask, current_app, g, request
from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import Base, UTCDateTime, utcnow
from shared.http import ProblemError
from shared.http.problems import too_many_requests
from shared.ratelimit import Limits, RateLimiter

Role = Literal["marketer", "pos", "members", "admin"]
ROLES: tuple[Role, ...] = ("marketer", "pos", "members", "admin")


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


def authenticate(
    session: Session, server_secret: str | Sequence[str], presented: str
) -> Principal | None:
    """The principal for a presented key, or None.

    `server_secret` may list TENIN_SECRET_KEY then TENIN_PREVIOUS_SECRET_KEYS: a key hashed
    before a rotation keeps working (every secret is tried, so timing does not tell which).
    """
    server_secrets = [server_secret] if isinstance(server_secret, str) else list(server_secret)
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "tn":
        _hash_secret(server_secrets[0], presented)
        return None
    _, key_id, secret = parts
    row = session.get(ApiKey, key_id)
    expected = row.secret_hash if row is not None else _DUMMY_HASH
    hashes = [_hash_secret(server, secret) for server in server_secrets]
    matches = any([hmac.compare_digest(expected, h) for h in hashes])
    if row is None or not matches or row.revoked_at is not None:
        return None
    return Principal(key_id=row.key_id, role=row.role, store_id=row.store_id)


# How long a valid POS key is taken on trust (docs/interfaces.md § Conventions).
POS_KEY_MEMORY_S = 5.0
REMEMBERED_ROLES = frozenset({"pos"})  # the keys that call at a till's rate


class VerifiedKeys:
    """Principals of keys found valid in the last `ttl_s` seconds, by a hash of the key.

    Only what `authenticate` accepted is remembered (an unknown or revoked key is looked up
    each time, so a key made a moment ago works at once), only for `REMEMBERED_ROLES`, and
    at most `max_keys` of them (beyond that the memory starts over). The key is kept as its
    SHA-256, never in clear.
    """

    def __init__(
        self,
        ttl_s: float = POS_KEY_MEMORY_S,
        max_keys: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s, self.max_keys, self.clock = ttl_s, max_keys, clock
        self._known: dict[bytes, tuple[float, Principal]] = {}

    def get(self, presented: str) -> Principal | None:
        """The principal of a key verified less than `ttl_s` ago, else None."""
        hit = self._known.get(hashlib.sha256(presented.encode()).digest())
        if hit is None or hit[0] <= self.clock():
            return None
        return hit[1]

    def remember(self, presented: str, principal: Principal) -> None:
        """Take a key `authenticate` just accepted on trust for `ttl_s` seconds."""
        if self.ttl_s <= 0 or principal.role not in REMEMBERED_ROLES:
            return
        if len(self._known) >= self.max_keys:
            self._known = {}  # a new dict: a concurrent `get` still reads the old one
        digest = hashlib.sha256(presented.encode()).digest()
        self._known[digest] = (self.clock() + self.ttl_s, principal)


F = TypeVar("F", bound=Callable[..., Any])

# A 401 says which scheme it wants (RFC 9110 § 11.6.1).
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
RATE_LIMITS = "tenin.rate_limits"  # the Flask extension key install_rate_limits sets


@dataclass(frozen=True)
class ApiRateLimits:
    """The per-key and per-store buckets every authenticated call takes a token from."""

    limiter: RateLimiter
    limits: Limits

    def check(self, principal: Principal) -> None:
        """429 when the key's (or, for a POS key, its store's) bucket is empty."""
        takes = [(self.limits.for_role(principal.role), principal.key_id)]
        if principal.role == "pos" and principal.store_id:
            takes.append((self.limits["store"], principal.store_id))
        verdict = self.limiter.take_all(takes)  # one round trip for both
        if not verdict.allowed:
            raise too_many_requests(
                verdict.retry_after_s, "too many requests for this API key or its store"
            )


def install_rate_limits(app: Flask, limiter: RateLimiter, limits: Limits | None = None) -> None:
    """Make every `require_role` view of `app` take from the API-key and store buckets."""
    app.extensions[RATE_LIMITS] = ApiRateLimits(limiter, limits or Limits.from_env())


def bearer_token(header: str) -> str | None:
    """The credentials of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_role(
    *roles: str,
    sessions: Callable[[], Session],
    secret: str | Sequence[str],
    verified: VerifiedKeys | None = None,
) -> Callable[[F], F]:
    """Decorator: 401 without a valid key, 403 when its role is not allowed (admin always is),
    429 when the key's rate limit is spent (docs/interfaces.md § Rate limits).

    `verified` remembers valid POS keys for a few seconds (a `VerifiedKeys` of its own when
    not given; `VerifiedKeys(ttl_s=0)` looks every key up).
    """
    known = verified if verified is not None else VerifiedKeys()

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = bearer_token(request.headers.get("Authorization", ""))
            if token is None:
                raise ProblemError(
                    401,
                    "Unauthorized",
                    "an API key is required (Authorization: Bearer <key>)",
                    headers=BEARER_CHALLENGE,
                )
            principal = known.get(token)
            if principal is None:
                with sessions() as session:
                    principal = authenticate(session, secret, token)
                if principal is not None:
                    known.remember(token, principal)
            if principal is None:
                raise ProblemError(
                    401, "Unauthorized", "the API key is not valid", headers=BEARER_CHALLENGE
                )
            limits = current_app.extensions.get(RATE_LIMITS)
            if limits is not None:
                limits.check(principal)
            if principal.role != "admin" and principal.role not in roles:
                raise ProblemError(
                    403, "Forbidden", f"this endpoint needs a {' or '.join(roles)} key"
                )
            g.principal = principal
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator
