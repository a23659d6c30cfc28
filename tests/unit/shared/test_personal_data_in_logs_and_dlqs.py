"""Personal data never reaches a log line or a dead-letter record in the clear (issue 11,
finding 8): a LINE user id, a member id and a message text travel through poison
messages, failing handlers and a failing SQL statement; none may come out."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from services.redemption_tracker.pos.topic import decode_pos_message
from shared.bus import InMemoryBroker, Message
from shared.consumer import ConsumerLoop
from shared.db import make_engine
from shared.events import dlq_topic, encode, make_event

USER_ID = "U" + secrets.token_hex(16)
MEMBER_ID = "M1234567"
TEXT = "sentinel-text-" + secrets.token_hex(4)
SENTINELS = (USER_ID, MEMBER_ID, TEXT)


def leaked(blob: str) -> list[str]:
    return [s for s in SENTINELS if s in blob]


def log_text(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """Every captured record (message, arguments, exception) and everything written to
    stdout and stderr, where structlog renders."""
    out, err = capfd.readouterr()
    parts = [caplog.text, out, err]
    for record in caplog.records:
        parts += [str(record.msg), repr(record.args)]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(repr(record.exc_info[1]))
    return "\n".join(parts)


def dead_letters(broker: InMemoryBroker, topic: str) -> list[Message]:
    reader = broker.consumer("dlq-reader", [dlq_topic(topic)])
    return reader.poll(timeout_ms=100, max_records=100)


def failing_handler(envelope: Any) -> None:
    raise RuntimeError(f"member {MEMBER_ID!r} of {USER_ID} said {TEXT!r}")


def poison_messages(topic: str, broker: InMemoryBroker) -> None:
    producer = broker.producer()
    payload = {"customer_id": "c_1"}
    producer.send(
        topic, "c_1", encode(make_event("customer.opted_out", payload, key="c_1", producer="t"))
    )
    raw = json.dumps({"user": USER_ID, "member_id": MEMBER_ID, "text": TEXT})
    producer.send(topic, "c_1", raw.encode() + b"{not json")
    producer.flush()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """Everything logged during the test, at every level, so far."""
    caplog.set_level(logging.DEBUG)
    return lambda: log_text(caplog, capfd)


def assert_clean(logged: str) -> None:
    assert "message_dead_lettered" in logged  # the capture sees the loop's log lines
    where = [logged[max(0, logged.find(s) - 300) : logged.find(s) + 80] for s in leaked(logged)]
    assert where == [], where


def test_a_failing_handler_and_a_broken_message_leak_nothing(logs: Callable[[], str]) -> None:
    broker = InMemoryBroker()
    topic = "chat.inbound"
    poison_messages(topic, broker)
    loop: ConsumerLoop[Any] = ConsumerLoop(
        broker, "g", [topic], failing_handler, max_attempts=2, retry_backoff_s=0
    )
    assert loop.run_once(threading.Event()) == 2
    records = dead_letters(broker, topic)
    assert len(records) == 2
    for record in records:
        blob = record.value.decode() + repr(record.headers) + str(record.key)
        assert leaked(blob) == [], blob
    assert_clean(logs())


def test_a_pos_message_that_fails_validation_leaks_nothing(logs: Callable[[], str]) -> None:
    broker = InMemoryBroker()
    topic = "pos.transactions"
    body = {
        "transaction_id": "t-1",
        "occurred_at": "2026-11-30T10:00:00+09:00",
        "currency": "JPY",
        "total": 1000,
        "items": [{"sku": "1", "category": TEXT, "qty": 1, "unit_price": 1000}],
        "coupon_codes": [],
        "member_id": MEMBER_ID + "-" + USER_ID * 4,  # too long: pydantic echoes the input
    }
    broker.producer().send(topic, "S001", json.dumps(body).encode())
    loop: ConsumerLoop[Any] = ConsumerLoop(
        broker, "g", [topic], lambda _: None, decoder=decode_pos_message
    )
    assert loop.run_once(threading.Event()) == 1
    [record] = dead_letters(broker, topic)
    blob = record.value.decode() + repr(record.headers)
    assert "member_id" in json.loads(record.value)["error"]  # still says what is wrong
    assert leaked(blob) == [], blob
    assert_clean(logs())


def test_a_failing_statement_does_not_show_its_parameters() -> None:
    engine = make_engine("sqlite://")
    with pytest.raises(SQLAlchemyError) as failure, engine.connect() as conn:
        conn.execute(text("INSERT INTO no_such_table VALUES (:a, :b)"), {"a": USER_ID, "b": TEXT})
    assert leaked(str(failure.value)) == [] and leaked(repr(failure.value)) == []


def test_a_line_user_id_in_any_log_line_is_masked(capfd: pytest.CaptureFixture[str]) -> None:
    import structlog

    from shared.logging import configure_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("pii-test", "INFO", json_output=True)
    try:
        logging.getLogger("some.library").error("could not reach %s", USER_ID)
        try:
            raise RuntimeError(f"push to {USER_ID} failed")
        except RuntimeError:
            logging.getLogger("some.library").exception("push_failed")
    finally:
        root.handlers[:], root.level = handlers, level
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
    err = capfd.readouterr().err
    assert "could not reach U…" in err and "push to U…" in err
    assert USER_ID not in err
