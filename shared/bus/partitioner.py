"""Kafka's key-hash partitioning, with the hash computed in compiled code.

A keyed record goes to `murmur2(key) & 0x7fffffff` modulo the topic's partition count, as
the Java client and kafka-python's `DefaultPartitioner` place it, so a customer's events
land on the same partition whichever client wrote them (docs/architecture.md § Hot paths).
kafka-python computes murmur2 in pure Python, ~4.5 µs a record: ~14% of an outbox relay's
CPU in bench/decision_latency.py. The `murmurhash2` wheel (Rust, abi3) gives the same
32-bit MurmurHash2 in ~0.3 µs; Kafka's variant is that hash with seed 0x9747b28c.
"""

from __future__ import annotations

from typing import Any

from kafka.partitioner.default import DefaultPartitioner
from murmurhash2 import murmurhash2

# The seed Kafka's Utils.murmur2 uses.
KAFKA_MURMUR2_SEED = 0x9747B28C


def kafka_murmur2(key: bytes) -> int:
    """Kafka's murmur2 of `key` (unsigned 32 bits, as kafka-python's `murmur2`)."""
    return int(murmurhash2(key, KAFKA_MURMUR2_SEED))


class Murmur2Partitioner(DefaultPartitioner):
    """kafka-python's DefaultPartitioner with the compiled hash; a record without a key
    still goes where the default sends it (a random available partition)."""

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        if serialized_key is None:
            return int(
                super().partition(topic, key, serialized_key, value, serialized_value, cluster)
            )
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        ordered = sorted(partitions)
        return int(ordered[(kafka_murmur2(serialized_key) & 0x7FFFFFFF) % len(ordered)])
