"""Building, encoding and decoding envelopes, each validated against its payload schema.

A producer cannot emit, and a consumer cannot apply, a malformed event: the payload is
checked against the schema registered for its (type, version) on both sides.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.events.base import Envelope, EventSchemaError, Strict
from shared.events.registry import SCHEMAS
from shared.ids import random_uuid

P = TypeVar("P", bound=Strict)

# The record header a relay sends with each event: its envelope's type, so a consumer can
# skip a type it does not apply without decoding it (shared.consumer.ConsumerLoop). The
# envelope stays the truth: a consumer that applies the type decodes and checks it whole.
TYPE_HEADER = "type"


def type_headers(event_type: str | None) -> list[tuple[str, bytes]]:
    """The headers of a record carrying an event of `event_type` (none when unknown)."""
    return [(TYPE_HEADER, event_type.encode("utf-8"))] if event_type else []


def type_in(headers: Sequence[tuple[str, bytes]]) -> str | None:
    """The event type a record's headers name, if they name one."""
    for name, value in headers:
        if name == TYPE_HEADER:
            return value.decode("utf-8", "replace")
    return None


def _schema_for(event_type: str, version: int) -> type[Strict]:
    try:
        return SCHEMAS[(event_type, version)]
    except KeyError:
        raise EventSchemaError(f"unknown event type {event_type!r} version {version}") from None


def make_event(
    event_type: str,
    payload: Strict | dict[str, Any],
    *,
    key: str,
    producer: str,
    version: int = 1,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> Envelope:
    """Build a validated envelope; raises EventSchemaError if the payload is wrong."""
    schema = _schema_for(event_type, version)
    if type(payload) is schema:
        checked: Strict = payload  # validated when built, and frozen (Strict)
    else:
        raw = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
        try:
            checked = schema.model_validate(raw)
        except ValidationError as exc:
            raise EventSchemaError(f"invalid {event_type} payload: {exc}") from exc
    envelope = Envelope(
        event_id=event_id or random_uuid(),
        type=event_type,
        version=version,
        occurred_at=occurred_at or datetime.now(UTC),
        producer=producer,
        key=key,
        payload=checked.model_dump(mode="json"),
    )
    envelope._typed = checked
    return envelope


def encode(envelope: Envelope) -> bytes:
    """Serialise an envelope to JSON bytes for the wire."""
    return envelope.model_dump_json().encode("utf-8")


def decode(raw: bytes) -> Envelope:
    """Parse and validate wire bytes (envelope and payload); raises EventSchemaError."""
    try:
        # pydantic's own JSON parser: one pass from bytes to the validated envelope.
        envelope = Envelope.model_validate_json(raw)
    except (ValueError, ValidationError) as exc:
        raise EventSchemaError(f"not a valid envelope: {exc}") from exc
    parse_payload(envelope)
    return envelope


def parse_payload(envelope: Envelope) -> Strict:
    """The typed payload of an envelope, validated against its registered schema (once: the
    result is kept on the envelope, whose fields are frozen)."""
    kept = envelope.__pydantic_private__  # read directly: `envelope._typed` takes a slow path
    if kept and kept.get("_typed") is not None:
        return kept["_typed"]
    schema = _schema_for(envelope.type, envelope.version)
    try:
        typed = schema.model_validate(envelope.payload)
    except ValidationError as exc:
        raise EventSchemaError(f"invalid {envelope.type} payload: {exc}") from exc
    envelope._typed = typed
    return typed


def payload_as(envelope: Envelope, expected: type[P]) -> P:
    """The payload, validated, as the schema a handler expects; EventSchemaError otherwise."""
    payload = parse_payload(envelope)
    if not isinstance(payload, expected):
        raise EventSchemaError(
            f"{envelope.type} v{envelope.version} carries {type(payload).__name__}, "
            f"not {expected.__name__}"
        )
    return payload
