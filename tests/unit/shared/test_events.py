"""The envelope and payload schemas validate on both sides."""

from __future__ import annotations

import json
import uuid

import pytest

from shared.events import (
    SCHEMAS,
    TOPIC_OF_TYPE,
    EventSchemaError,
    OfferRequested,
    decode,
    encode,
    make_event,
    parse_payload,
    payload_as,
)


def _offer_requested() -> dict:
    return {
        "request_id": "r1",
        "customer_id": "c_1",
        "context": {"intent": "wants_deals", "sentiment": 0.2, "language": "ja", "local_hour": 9},
    }


def test_round_trip_keeps_every_field() -> None:
    env = make_event("offer.requested", _offer_requested(), key="c_1", producer="chat_agent")
    back = decode(encode(env))
    assert back == env
    payload = parse_payload(back)
    assert isinstance(payload, OfferRequested)
    assert payload.context.local_hour == 9


def test_a_decoded_payload_is_validated_once_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    back = decode(
        encode(make_event("offer.requested", _offer_requested(), key="c_1", producer="x"))
    )
    validations: list[object] = []
    original = OfferRequested.model_validate
    monkeypatch.setattr(
        OfferRequested,
        "model_validate",
        lambda obj, **kw: validations.append(obj) or original(obj, **kw),
    )
    first = payload_as(back, OfferRequested)
    assert payload_as(back, OfferRequested) is first and parse_payload(back) is first
    assert validations == []  # decode validated it; the handler's ask reads what it kept
    assert first.customer_id == "c_1" and "_typed" not in back.model_dump()


def test_publish_side_rejects_a_bad_payload_naming_the_field() -> None:
    bad = _offer_requested()
    bad["context"]["local_hour"] = 25
    with pytest.raises(EventSchemaError, match="local_hour"):
        make_event("offer.requested", bad, key="c_1", producer="x")


def test_consume_side_rejects_unknown_fields_and_types() -> None:
    env = make_event("offer.requested", _offer_requested(), key="c_1", producer="x")
    raw = json.loads(encode(env))
    raw["payload"]["surprise"] = 1
    with pytest.raises(EventSchemaError, match="surprise"):
        decode(json.dumps(raw).encode())
    raw["payload"].pop("surprise")
    raw["type"] = "offer.invented"
    with pytest.raises(EventSchemaError, match="unknown event type"):
        decode(json.dumps(raw).encode())


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"event_id": "nope"}'])
def test_garbage_is_not_an_envelope(raw: bytes) -> None:
    with pytest.raises(EventSchemaError):
        decode(raw)


def test_naive_timestamps_are_refused() -> None:
    env = make_event("offer.requested", _offer_requested(), key="c_1", producer="x")
    raw = json.loads(encode(env))
    raw["occurred_at"] = "2026-11-29T10:00:00"
    with pytest.raises(EventSchemaError):
        decode(json.dumps(raw).encode())


def test_every_schema_has_a_topic() -> None:
    assert {t for t, _ in SCHEMAS} == set(TOPIC_OF_TYPE)
    assert all(uuid.UUID(str(uuid.uuid4())) for _ in range(1))
