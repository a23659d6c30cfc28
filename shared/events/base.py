"""The envelope every message travels in, and the base of every payload schema."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr


class EventSchemaError(ValueError):
    """Raised when bytes or a payload do not form a valid tenin event."""


class Strict(BaseModel):
    """Base for payloads: unknown fields are an error, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Envelope(Strict):
    """The one envelope every topic carries."""

    event_id: uuid.UUID
    type: str
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str
    key: str
    payload: dict[str, Any]
    # The payload as its schema, once codec.parse_payload validated it (a consumer decodes
    # an envelope, then its handler asks for the typed payload: validated once, not twice).
    _typed: Strict | None = PrivateAttr(default=None)
