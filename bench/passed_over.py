"""Bench: what a consumer group pays for a record of a type it does not apply.

chat_agent's coupon group applies only `coupon.redeemed`, but `coupon.events` carries one
`coupon.delivered` a push (docs/architecture.md § Hot paths). The same records, as a relay
publishes them (with their `type` header), are read by three groups, side by side in one
run, rounds interleaved:

- `passed over`: the group is told the types it applies (ConsumerLoop `handles`) and
  skips the others by their header, undecoded;
- `decoded`: as before, every record decoded and validated, then routed to no handler;
- `bare` (the anchor): the same poll and commit with no decoding at all (the decoder
  hands the raw record on): the floor any group pays for reading a record.

Prints the CPU of this process per record (median of the rounds: the consumer's fetch
thread included), each group's against the anchor, and what passing over saves.

    .venv/bin/python bench/passed_over.py [--records 20000] [--rounds 3]

On real Kafka when KAFKA_BOOTSTRAP_SERVERS is set (`eval "$(scripts/services up)"`), else
on the in-memory twin.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

from shared.bus import KAFKA_PROFILE, Broker, InMemoryBroker, KafkaBroker, Message  # noqa: E402
from shared.consumer import ConsumerLoop, route_by_type  # noqa: E402
from shared.events import CouponDelivered, encode, make_event, type_headers  # noqa: E402
from tests.support.kafka_tools import delete_topics  # noqa: E402

APPLIED = "coupon.redeemed"


def publish(broker: Broker, topic: str, records: int) -> None:
    """`records` coupon.delivered events, each with the header a relay sends."""
    broker.ensure_topics([topic])
    producer = broker.producer()
    for i in range(records):
        customer = f"c_{i:08d}"
        payload = CouponDelivered(
            code=f"TNN1-{i:08d}-ABC",
            customer_id=customer,
            campaign_id="camp-1",
            request_id=f"drop:d1:{customer}",
            channel="push",
            drop_id="d1",
        )
        envelope = make_event("coupon.delivered", payload, key=customer, producer="chat_agent")
        producer.send(topic, customer, encode(envelope), type_headers("coupon.delivered"))
    producer.flush()
    producer.close()


def consume(
    broker: Broker, topic: str, records: int, handler: Callable[[Any], None], **options: Any
) -> float:
    """CPU seconds of this process for one new group to read and commit every record."""
    loop: ConsumerLoop[Any] = ConsumerLoop(
        broker, f"bench.{uuid.uuid4().hex[:8]}", [topic], handler, batch_size=500, **options
    )
    stop = threading.Event()
    seen = 0
    try:
        while seen == 0:  # joined and fetching: the group's set-up is not what is measured
            seen += loop.run_once(stop, timeout_ms=1000)
        started = time.process_time()
        while seen < records:
            seen += loop.run_once(stop, timeout_ms=1000)
        return time.process_time() - started
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker: Broker = KafkaBroker(bootstrap, KAFKA_PROFILE) if bootstrap else InMemoryBroker()
    topic = f"bench.passed_over.{uuid.uuid4().hex[:8]}"
    publish(broker, topic, args.records)

    def bare(message: Message) -> Message:
        return message

    def nothing(_value: Any) -> None:
        pass

    ignored = route_by_type({APPLIED: nothing})  # as chat_agent routes coupon.events
    groups: dict[str, dict[str, Any]] = {
        "bare": {"handler": nothing, "decoder": bare},
        "passed over": {"handler": ignored, "handles": {APPLIED}},
        "decoded": {"handler": ignored},
    }
    cpu: dict[str, list[float]] = {name: [] for name in groups}
    for round_ in range(args.rounds):
        for name, options in groups.items():
            cpu[name].append(consume(broker, topic, args.records, **options))
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)
    per_record = {name: statistics.median(v) / args.records * 1e6 for name, v in cpu.items()}
    anchor = per_record["bare"]
    where = "Kafka" if bootstrap else "the in-memory twin"
    print(f"{args.records:,} coupon.delivered records on {where}, {args.rounds} rounds")
    print(f"  bare read (the anchor)   : {anchor:6.1f} µs of CPU a record")
    for name in ("passed over", "decoded"):
        above = per_record[name] - anchor
        print(f"  {name:<24} : {per_record[name]:6.1f} µs  ({above:+.1f} µs against the anchor)")
    saved = per_record["decoded"] - per_record["passed over"]
    print(
        f"  passing over saves {saved:.1f} µs a record, "
        f"{saved / per_record['decoded']:.0%} of what the group paid to decode it"
    )
    if bootstrap:
        delete_topics(bootstrap, [topic])


if __name__ == "__main__":
    main()
