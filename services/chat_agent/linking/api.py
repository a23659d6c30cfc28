"""`POST /v1/members/link-nonces`: the member site trades a link token for a nonce.

The member site calls it once it has signed the member in, with its `members` key, and
sends the member's browser to the returned `redirect_url`, the platform's account-link
dialog (docs/interfaces.md § Account link).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from services.chat_agent.linking.requests import (
    LinkTokenRefused,
    issue_nonce,
    redirect_url,
)
from shared.auth import require_role
from shared.crypto import member_hash
from shared.db import unit_of_work
from shared.fields import Ident
from shared.http import Operation, ProblemError, parse_json_body

_LINK_TOKEN = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")]
_REFUSALS = {
    "unknown": (422, "no link token with this value was issued"),
    "expired": (422, "the link token has expired; the customer asks for a new link in chat"),
    "used": (409, "the link token was already used"),
}


class LinkNonceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: Annotated[Ident, Field(max_length=64, description="the signed-in member")]
    link_token: Annotated[_LINK_TOKEN, Field(description="the linkToken from the link URL")]


class LinkNonce(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nonce: str
    redirect_url: str


OPERATIONS = [
    Operation(
        "POST",
        "/v1/members/link-nonces",
        "A single-use nonce linking a signed-in member to the customer of a link token",
        request_model=LinkNonceRequest,
        response_model=LinkNonce,
        status=201,
    ),
]


def link_nonce_blueprint(
    sessions: Callable[[], Session],
    secret_key: str,
    pseudonym_key: str,
    clock: Callable[[], datetime],
) -> Blueprint:
    """POST /v1/members/link-nonces (members key; member ids hashed with `pseudonym_key`)."""
    bp = Blueprint("link_nonces", __name__)
    members = require_role("members", sessions=sessions, secret=secret_key)

    @bp.post("/v1/members/link-nonces")
    @members
    def create_link_nonce() -> tuple[Response, int]:
        """Create a nonce for the account-link dialog (docs/interfaces.md § Account link)."""
        body = parse_json_body(LinkNonceRequest)
        hashed = member_hash(pseudonym_key, body.member_id)
        try:
            with unit_of_work(sessions) as session:
                nonce = issue_nonce(session, body.link_token, hashed, clock())
        except LinkTokenRefused as refused:
            status, message = _REFUSALS[refused.reason]
            errors = [{"field": "link_token", "message": message}]
            title = "Conflict" if status == 409 else "Validation failed"
            raise ProblemError(status, title, message, errors=errors) from None
        answer = LinkNonce(nonce=nonce, redirect_url=redirect_url(body.link_token, nonce))
        return jsonify(answer.model_dump()), 201

    return bp
