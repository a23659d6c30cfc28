"""The LINE Messaging API webhook body, as far as tenin reads it, and who sent it.

Unknown fields are allowed everywhere: LINE adds fields over time, and the raw event
travels on `chat.inbound` unchanged so nothing is lost for later handlers.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field

from shared.crypto import pseudonym

# webhookEventId → the envelope event_id, so every redelivery of one LINE event maps to
# the same id and the worker's processed-events record drops the repeats.
_WEBHOOK_EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "tenin:line:webhook-event")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Source(_Open):
    type: str = Field(min_length=1, max_length=16)
    user_id: str | None = Field(default=None, alias="userId", max_length=64)


class DeliveryContext(_Open):
    is_redelivery: bool = Field(default=False, alias="isRedelivery")


class Message(_Open):
    type: str = Field(min_length=1, max_length=32)
    id: str | None = Field(default=None, max_length=64)
    text: str | None = Field(default=None, max_length=10_000)


class Postback(_Open):
    data: str = Field(default="", max_length=300)


class AccountLink(_Open):
    """The outcome of the platform's account-link dialog (an `accountLink` event)."""

    result: str = Field(max_length=16)
    nonce: str = Field(default="", max_length=255)


class LineEvent(_Open):
    type: str = Field(min_length=1, max_length=32)
    timestamp: int = Field(ge=0)
    source: Source | None = None
    reply_token: str | None = Field(default=None, alias="replyToken", max_length=255)
    webhook_event_id: str = Field(alias="webhookEventId", min_length=1, max_length=64)
    delivery_context: DeliveryContext = Field(
        default_factory=DeliveryContext, alias="deliveryContext"
    )
    mode: str = "active"
    message: Message | None = None
    postback: Postback | None = None
    link: AccountLink | None = None

    @property
    def user_id(self) -> str | None:
        """The sender's LINE user id, when the source carries one."""
        return self.source.user_id if self.source else None

    @property
    def from_user(self) -> bool:
        """True for a one-to-one chat with a user (not a group or room)."""
        return bool(self.source and self.source.type == "user" and self.source.user_id)

    @property
    def envelope_id(self) -> uuid.UUID:
        """The stable event id of this LINE event."""
        return uuid.uuid5(_WEBHOOK_EVENT_NAMESPACE, self.webhook_event_id)

    def postback_params(self) -> dict[str, str]:
        """The postback data parsed as a query string (`action=deals`)."""
        if self.postback is None:
            return {}
        return dict(parse_qsl(self.postback.data, keep_blank_values=True))


class WebhookBody(_Open):
    destination: str = Field(min_length=1, max_length=64)
    events: list[LineEvent] = Field(max_length=1000)


def parse_event(raw: dict[str, Any]) -> LineEvent:
    """A raw event dict from `chat.inbound` as a typed LineEvent."""
    return LineEvent.model_validate(raw)


def customer_id_for(secret_key: str, line_user_id: str) -> str:
    """The pseudonymous customer_id of a LINE user (docs/architecture.md § Invariants)."""
    return pseudonym(secret_key, "line-user", line_user_id, prefix="c_")
