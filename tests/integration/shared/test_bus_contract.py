"""One contract suite for the bus, run against real Kafka, Tansu and the in-memory twin,
so the twin the unit tests use cannot drift from Kafka."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from shared.bus import Broker, TopicConfigsUnknown
from shared.consumer import ConsumerLoop
from shared.dead_letters import DeadLetterSeal
from shared.events import dlq_topic, encode, make_event, type_headers
from tests.support.brokers import drain, poll_quietly
from tests.support.waiting import running, wait_for


def test_a_keyed_stream_keeps_its_per_key_order(broker: Broker, unique: str) -> None:
    topic = f"contract.order.{unique}"
    broker.ensure_topics([topic])
    producer = broker.producer()
    keys = [f"customer-{i}" for i in range(6)]
    for seq in range(50):
        for key in keys:
            producer.send(topic, key, json.dumps({"key": key, "seq": seq}).encode())
    producer.flush()
    consumer = broker.consumer(f"g.{unique}", [topic])
    try:
        messages = drain(consumer, 300)
    finally:
        consumer.close()
        producer.close()
    seen: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        body = json.loads(m.value)
        assert m.key == body["key"]
        seen[body["key"]].append(body["seq"])
    assert set(seen) == set(keys)
    for key in keys:
        assert seen[key] == list(range(50)), f"order broken for {key}"


def test_a_bulk_consumer_still_gets_a_lone_record(broker: Broker, unique: str) -> None:
    """A bulk group (shared/bus/profiles.BULK_FETCH) asks the broker to hold its fetch for
    1 MiB; the broker must still answer when the wait is up, with one small record."""
    topic = f"contract.bulk.{unique}"
    broker.ensure_topics([topic])
    consumer = broker.consumer(f"g.{unique}", [topic], bulk=True)
    producer = broker.producer()
    try:
        assert poll_quietly(consumer, 2.0) == []  # joined, its fetch now held by the broker
        producer.send(topic, "one-key", b"lone")
        producer.flush()
        [message] = drain(consumer, 1, timeout=30.0)
        assert message.value == b"lone"
    finally:
        consumer.close()
        producer.close()


def test_a_group_resumes_after_its_committed_offset(broker: Broker, unique: str) -> None:
    topic = f"contract.resume.{unique}"
    broker.ensure_topics([topic])
    producer = broker.producer()
    for i in range(10):
        producer.send(topic, "one-key", str(i).encode())
    producer.flush()
    first = broker.consumer(f"g.{unique}", [topic])
    got = drain(first, 10)
    first.commit(got[:4])
    first.close()
    second = broker.consumer(f"g.{unique}", [topic])
    try:
        rest = drain(second, 6)
        assert [int(m.value) for m in rest] == [4, 5, 6, 7, 8, 9]
    finally:
        second.close()
        producer.close()


def test_commits_sent_without_waiting_hold_once_the_consumer_leaves(
    broker: Broker, unique: str
) -> None:
    """`commit(wait=False)` (the decision loop's): whatever the broker made of the commits
    on the way, leaving the group commits the last offsets, so the next member resumes
    right after them."""
    topic = f"contract.nowait.{unique}"
    broker.ensure_topics([topic])
    producer = broker.producer()
    for i in range(30):
        producer.send(topic, "one-key", str(i).encode())
    producer.flush()
    first = broker.consumer(f"g.{unique}", [topic])
    got = drain(first, 30)
    for at in range(0, 20, 5):
        first.commit(got[at : at + 5], wait=False)
    first.close()
    second = broker.consumer(f"g.{unique}", [topic])
    try:
        rest = drain(second, 10)
        assert [int(m.value) for m in rest] == list(range(20, 30))
    finally:
        second.close()
        producer.close()


def test_uncommitted_messages_are_delivered_again(broker: Broker, unique: str) -> None:
    topic = f"contract.redeliver.{unique}"
    broker.ensure_topics([topic])
    producer = broker.producer()
    for i in range(5):
        producer.send(topic, "k", str(i).encode())
    producer.flush()
    crashed = broker.consumer(f"g.{unique}", [topic])
    assert len(drain(crashed, 5)) == 5
    crashed.close()  # leaves without committing, as a crash would
    again = broker.consumer(f"g.{unique}", [topic])
    try:
        assert [int(m.value) for m in drain(again, 5)] == [0, 1, 2, 3, 4]
    finally:
        again.close()
        producer.close()


def test_a_poison_message_lands_in_the_dlq_and_the_stream_flows(
    broker: Broker, unique: str
) -> None:
    topic = f"contract.poison.{unique}"
    broker.ensure_topics([topic, dlq_topic(topic)])
    producer = broker.producer()

    def event(n: int) -> bytes:
        payload = {"customer_id": f"c_{n}"}
        return encode(make_event("customer.opted_out", payload, key="k", producer="test"))

    producer.send(topic, "k", event(1))
    producer.send(topic, "k", b"\xff not an envelope")
    producer.send(topic, "k", event(2))
    producer.send(topic, "k", event(3))  # the handler always fails on this one
    producer.send(topic, "k", event(4))
    producer.flush()

    handled: list[str] = []

    def handler(envelope) -> None:  # type: ignore[no-untyped-def]
        if envelope.payload["customer_id"] == "c_3":
            raise RuntimeError("handler keeps failing")
        handled.append(envelope.payload["customer_id"])

    seal = DeadLetterSeal("contract-test-secret-" + unique)
    loop: ConsumerLoop = ConsumerLoop(
        broker, f"g.{unique}", [topic], handler, max_attempts=2, retry_backoff_s=0.01, seal=seal
    )
    with running(loop.run):
        wait_for(lambda: len(handled) == 3, timeout=60, what="the valid events")
    assert handled == ["c_1", "c_2", "c_4"]

    dlq = broker.consumer(f"dlq.{unique}", [dlq_topic(topic)])
    try:
        dead = drain(dlq, 2)
        assert poll_quietly(dlq, 1.0) == []
    finally:
        dlq.close()
        producer.close()
    records = [json.loads(m.value) for m in dead]
    assert [r["origin"]["offset"] for r in records] == [1, 3]
    assert records[0]["error_type"] == "PoisonMessage"
    assert seal.open(records[0]["sealed"])["original_encoding"] == "base64"
    assert '"customer_id":"c_3"' in seal.open(records[1]["sealed"])["original"]
    assert records[1]["attempts"] == 2 and "keeps failing" in records[1]["error"]
    assert all(r["origin"]["topic"] == topic for r in records)

    # Everything, including the dead-lettered ones, was committed: a new member gets nothing.
    after = broker.consumer(f"g.{unique}", [topic])
    try:
        assert poll_quietly(after, 2.0) == []
    finally:
        after.close()


def test_a_group_passes_over_other_types_by_their_header(broker: Broker, unique: str) -> None:
    """The relay's `type` header reaches the consumer on every broker, and a group that
    applies one type passes over the others without decoding them (shared.consumer)."""
    topic = f"contract.types.{unique}"
    broker.ensure_topics([topic, dlq_topic(topic)])
    producer = broker.producer()
    for n in range(1, 4):
        envelope = make_event("customer.opted_in", {"customer_id": f"c_{n}"}, key="k", producer="t")
        producer.send(topic, "k", encode(envelope), type_headers("customer.opted_in"))
        producer.send(topic, "k", b"\xff never decoded", type_headers("customer.opted_out"))
    producer.flush()
    handled: list[str] = []

    def handler(envelope) -> None:  # type: ignore[no-untyped-def]
        handled.append(envelope.payload["customer_id"])

    loop: ConsumerLoop = ConsumerLoop(
        broker, f"g.{unique}", [topic], handler, handles={"customer.opted_in"}
    )
    with running(loop.run):
        wait_for(lambda: loop.stats.passed_over == 3, timeout=60, what="the other type")
    assert handled == ["c_1", "c_2", "c_3"]
    dlq = broker.consumer(f"dlq.{unique}", [dlq_topic(topic)])
    try:
        assert poll_quietly(dlq, 1.0) == [], "nothing passed over was dead-lettered"
    finally:
        dlq.close()
        producer.close()


def test_namespaces_keep_deployments_apart(broker: Broker, unique: str) -> None:
    """Two deployments sharing one cluster never read each other's topics."""
    import pytest

    from shared.bus import KafkaBroker

    if not isinstance(broker, KafkaBroker):
        pytest.skip("namespaces are a property of the Kafka adapter; the twin is one process")
    topic = f"contract.ns.{unique}"
    blue = KafkaBroker(broker.bootstrap, broker.profile, namespace=f"blue-{unique}.")
    green = KafkaBroker(broker.bootstrap, broker.profile, namespace=f"green-{unique}.")
    for b in (blue, green):
        b.ensure_topics([topic])
    producer = blue.producer()
    producer.send(topic, "k", b"for blue only")
    producer.flush()
    producer.close()
    blue_reader, green_reader = blue.consumer("g", [topic]), green.consumer("g", [topic])
    try:
        got = drain(blue_reader, 1)
        assert [(m.topic, m.value) for m in got] == [(topic, b"for blue only")]
        assert poll_quietly(green_reader, 2.0) == []
    finally:
        blue_reader.close()
        green_reader.close()


def test_a_topics_record_lifetime_is_what_the_broker_keeps(broker: Broker, unique: str) -> None:
    """How long a record may stay (shared.retention.outlasts_topics checks the window of
    processed-event records against it): Kafka's defaults, 7 days of retention plus up to
    7 more until the record's segment closes; the twin, which never forgets a group's
    offsets, describes no topic; a topic that does not exist is left out. Tansu cannot
    tell (it drops the connection on DescribeConfigs), so it is not asked."""
    topic = f"contract.lifetime.{unique}"
    broker.ensure_topics([topic])
    asked = [topic, f"contract.missing.{unique}"]
    if broker.name == "tansu":
        with pytest.raises(TopicConfigsUnknown):
            broker.record_lifetime_ms(asked)
        return
    expected = {"kafka": {topic: 14 * 86_400_000}, "memory": {}}
    assert broker.record_lifetime_ms(asked) == expected[broker.name]
