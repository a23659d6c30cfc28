"""Link attempts in the database: a link token, then a nonce, then one redemption.

The platform issues the link token for one LINE user; the member site, having signed a
member in, trades it for a nonce bound to that member; the platform's `accountLink`
event brings the nonce back. The nonce is single use, lives `NONCE_TTL`, carries 192
random bits, and completes a link only for the customer the link token was issued to
(docs/interfaces.md § Account link). Only SHA-256 digests of the token and the nonce
are stored: both are bearer secrets.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from services.chat_agent.models import LinkRequest

LINK_TOKEN_TTL = timedelta(minutes=10)  # the platform's link tokens live ten minutes
NONCE_TTL = timedelta(minutes=10)
NONCE_BYTES = 24  # 192 bits; LINE asks for at least 128
ACCOUNT_LINK_DIALOG = "https://access.line.me/dialog/bot/accountLink"


class LinkTokenRefused(Exception):
    """A link token the member site may not trade for a nonce; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Redemption:
    """An `accountLink` nonce redeemed: the member to link, or why nothing is linked."""

    member_hash: str | None
    refusal: str | None = None


def digest(secret: str) -> str:
    """The SHA-256 hex digest a token or nonce is stored as."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def record_link_token(session: Session, token: str, customer_id: str, now: datetime) -> None:
    """Remember that the platform issued `token` for `customer_id`."""
    session.merge(
        LinkRequest(
            token_digest=digest(token),
            customer_id=customer_id,
            token_expires_at=now + LINK_TOKEN_TTL,
            status="pending",
            created_at=now,
        )
    )


def issue_nonce(session: Session, link_token: str, member_hash: str, now: datetime) -> str:
    """A fresh nonce binding `member_hash` to the link token's customer.

    Asking again for the same link token (a member site retrying) replaces the earlier
    nonce, which then links nothing. Raises LinkTokenRefused for a token tenin never
    asked for, one past its ten minutes, or one already used.
    """
    request = session.get(LinkRequest, digest(link_token), with_for_update=True)
    if request is None:
        raise LinkTokenRefused("unknown")
    if request.status in ("linked", "failed"):
        raise LinkTokenRefused("used")
    if request.token_expires_at <= now:
        raise LinkTokenRefused("expired")
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    request.nonce_digest = digest(nonce)
    request.member_hash = member_hash
    request.nonce_expires_at = now + NONCE_TTL
    request.status = "nonce_issued"
    return nonce


def redirect_url(link_token: str, nonce: str) -> str:
    """The platform's account-link dialog for this token and nonce."""
    return f"{ACCOUNT_LINK_DIALOG}?{urlencode({'linkToken': link_token, 'nonce': nonce})}"


def redeem_nonce(
    session: Session, nonce: str, customer_id: str, ok: bool, at: datetime
) -> Redemption:
    """Use the nonce of an `accountLink` event from `customer_id` at `at` (its LINE time).

    A nonce is used once whatever the outcome; it links only when the platform said
    `ok`, in time, for the customer its link token was issued to.
    """
    request = None
    if nonce:
        request = (
            session.query(LinkRequest)
            .filter(LinkRequest.nonce_digest == digest(nonce))
            .with_for_update()
            .one_or_none()
        )
    if request is None or request.status != "nonce_issued":
        return Redemption(None, "unknown_nonce")
    request.completed_at = at
    request.status = "failed"
    if request.customer_id != customer_id:
        return Redemption(None, "other_customer")
    if request.nonce_expires_at is None or request.nonce_expires_at < at:
        return Redemption(None, "expired")
    if not ok:
        return Redemption(None, "platform_failed")
    request.status = "linked"
    return Redemption(request.member_hash)
