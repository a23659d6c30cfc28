"""Asking the platform for a link token, a limited number of times per customer.

Each ask costs a platform call and starts an attempt, so the `link` bucket limits them
per customer (by default 5 at once, then one every twenty minutes). It fails closed:
while the limiter's Redis is unreachable nobody starts a link, which only delays
linking (docs/interfaces.md § Rate limits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

import structlog

from services.chat_agent import metrics
from services.chat_agent.line.client import LineResponse
from shared.ratelimit import Bucket, RateLimiter

log = structlog.get_logger(__name__)


class IssuesLinkTokens(Protocol):
    """The platform's link-token endpoint (LineClient)."""

    def issue_link_token(self, user_id: str) -> tuple[LineResponse, str | None]: ...


@dataclass(frozen=True)
class LinkStart:
    """A link token and the member-site URL carrying it, or why there is none.

    `refusal` is "rate_limited" or "unavailable" when there is no token.
    """

    token: str | None
    url: str | None = None
    refusal: str | None = None


@dataclass
class LinkTokens:
    """Link tokens from the platform, rate-limited per customer."""

    platform: Callable[[], IssuesLinkTokens]
    limiter: RateLimiter
    attempts: Bucket
    member_link_url: str

    def request(self, customer_id: str, line_user_id: str) -> LinkStart:
        """A fresh link token for this customer, unless they asked too often."""
        if not self.limiter.take(self.attempts, customer_id).allowed:
            metrics.LINKS.labels("token", "rate_limited").inc()
            return LinkStart(None, refusal="rate_limited")
        response, token = self.platform().issue_link_token(line_user_id)
        if token is None:
            metrics.LINKS.labels("token", "unavailable").inc()
            log.warning(
                "link_token_unavailable",
                customer_id=customer_id,
                status=response.status,
                line_request_id=response.request_id,
            )
            return LinkStart(None, refusal="unavailable")
        metrics.LINKS.labels("token", "issued").inc()
        glue = "&" if "?" in self.member_link_url else "?"
        return LinkStart(token, f"{self.member_link_url}{glue}{urlencode({'linkToken': token})}")
