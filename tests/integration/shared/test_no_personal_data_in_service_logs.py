"""No personal data in any service's log or dead-letter topic (issue 11, finding 8).

The three services run as operators run them (gunicorn apps and workers on real Kafka,
PostgreSQL and Redis). A customer with a sentinel LINE user id follows, writes a sentinel
text and types a member number; a till posts a sale for that member; two poison messages
carrying all three land in dead-letter topics. Then every line every process logged, and
every dead-letter record, must be free of the three sentinels. This test fails the build
when a new log line or DLQ field lets one through.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.bus import KAFKA_PROFILE, KafkaBroker, Message
from shared.events import CHAT_INBOUND, POS_TRANSACTIONS, dlq_topic
from tests.support.line_payloads import follow_event, text_event
from tests.support.redemption_tracker.builders import tx
from tests.support.stack import RunningStack, start_stack
from tests.support.waiting import wait_for

USER_ID = "U" + secrets.token_hex(16)
MEMBER_ID = "M1234567"
TEXT = "sentinel-text-" + secrets.token_hex(4)
SENTINELS = (USER_ID, MEMBER_ID, TEXT)


@pytest.fixture(scope="module")
def stack(
    real_services: dict[str, str], pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    yield from start_stack(real_services, pg_url, tmp_path_factory.mktemp("pii-logs"))


def say(stack: RunningStack, event: dict[str, object]) -> None:
    """One webhook event from the sentinel customer, and wait for chat_agent's answer."""
    before = len(stack.line.delivered_to(USER_ID))
    stack.line.own_reply_token(str(event["replyToken"]), USER_ID)
    assert stack.webhooks.post([event]).status_code == 200
    wait_for(
        lambda: len(stack.line.delivered_to(USER_ID)) > before,
        timeout=90,
        what="chat_agent's answer",
    )


def dead_letters(stack: RunningStack, count: int) -> list[Message]:
    namespace = stack.env["TENIN_TOPIC_NAMESPACE"]
    broker = KafkaBroker(stack.env["KAFKA_BOOTSTRAP_SERVERS"], KAFKA_PROFILE, namespace=namespace)
    topics = [dlq_topic(POS_TRANSACTIONS), dlq_topic(CHAT_INBOUND)]
    reader = broker.consumer(f"pii-reader-{secrets.token_hex(4)}", topics)
    seen: list[Message] = []
    try:

        def enough() -> bool:
            seen.extend(reader.poll(timeout_ms=500))
            return len(seen) >= count

        wait_for(enough, timeout=90, what=f"{count} dead-letter records")
    finally:
        reader.close()
    return seen


def poison(stack: RunningStack) -> None:
    namespace = stack.env["TENIN_TOPIC_NAMESPACE"]
    broker = KafkaBroker(stack.env["KAFKA_BOOTSTRAP_SERVERS"], KAFKA_PROFILE, namespace=namespace)
    producer = broker.producer()
    bad_sale = tx(member_id=MEMBER_ID + "-" + USER_ID * 3)  # too long: pydantic echoes it
    bad_sale["items"][0]["category"] = TEXT
    producer.send(POS_TRANSACTIONS, "S001", json.dumps(bad_sale).encode())
    bad_chat = json.dumps({"user": USER_ID, "member": MEMBER_ID, "text": TEXT}) + "{"
    producer.send(CHAT_INBOUND, "c_pii", bad_chat.encode())
    producer.flush(timeout=30)
    producer.close()


def test_no_sentinel_reaches_a_log_line_or_a_dead_letter_record(stack: RunningStack) -> None:
    say(stack, follow_event(USER_ID))
    say(stack, text_event(USER_ID, f"{TEXT} what deals do you have?"))
    say(stack, text_event(USER_ID, f"my card is {MEMBER_ID}"))
    sale = stack.tills["S001"].transactions([tx(member_id=MEMBER_ID)])
    assert sale.status_code == 200, sale.text
    poison(stack)
    records = dead_letters(stack, 2)

    for record in records:
        blob = record.value.decode(errors="replace") + repr(record.headers) + str(record.key)
        assert [s for s in SENTINELS if s in blob] == [], blob
    logs = {
        name: Path(process.log_path).read_text(errors="replace")
        for name, process in stack.services.processes.items()
    }
    assert "message_dead_lettered" in "".join(logs.values())  # the logs are the live ones
    leaks = {
        name: [line for line in text.splitlines() if any(s in line for s in SENTINELS)]
        for name, text in logs.items()
    }
    assert {name: lines for name, lines in leaks.items() if lines} == {}
