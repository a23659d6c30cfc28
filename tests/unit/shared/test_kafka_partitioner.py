"""shared/bus/partitioner: a keyed record lands where the Java client and kafka-python's
DefaultPartitioner put it, so a customer's events keep one partition whichever client
wrote them (docs/architecture.md § Hot paths)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from kafka.partitioner.default import DefaultPartitioner, murmur2

from shared.bus.partitioner import Murmur2Partitioner, kafka_murmur2

# org.apache.kafka.common.utils.UtilsTest.testMurmur2 (signed 32-bit results).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


class _Cluster:
    """The two ClusterMetadata calls a partitioner makes, for topics of given sizes."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self._sizes = sizes

    def topics(self) -> set[str]:
        return set(self._sizes)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self._sizes[topic])) if topic in self._sizes else None

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions_for_topic(topic) or set()


@pytest.mark.parametrize(("key", "signed"), sorted(JAVA_MURMUR2.items()))
def test_the_hash_is_the_java_clients(key: bytes, signed: int) -> None:
    assert kafka_murmur2(key) == signed & 0xFFFFFFFF


def test_the_hash_is_kafka_pythons_for_every_length() -> None:
    keys = [os.urandom(n) for n in range(70) for _ in range(30)]
    assert [kafka_murmur2(k) for k in keys] == [murmur2(k) for k in keys]


@pytest.mark.parametrize("partitions", [1, 3, 12, 48])
def test_records_land_where_the_default_partitioner_puts_them(partitions: int) -> None:
    cluster: Any = _Cluster({"offer.decided": partitions})
    ours, theirs = Murmur2Partitioner(), DefaultPartitioner()
    keys = [f"c-{n:06d}".encode() for n in range(2_000)] + [os.urandom(16) for _ in range(200)]
    placed = [ours.partition("offer.decided", None, k, None, b"v", cluster) for k in keys]
    assert placed == [theirs.partition("offer.decided", None, k, None, b"v", cluster) for k in keys]
    assert len(set(placed)) == partitions  # and they spread over every partition


def test_a_record_without_a_key_goes_to_some_partition_of_its_topic() -> None:
    cluster: Any = _Cluster({"drops": 12})
    placed = {
        Murmur2Partitioner().partition("drops", None, None, None, b"v", cluster) for _ in range(200)
    }
    assert placed <= set(range(12)) and len(placed) > 1


def test_an_unknown_topic_is_refused() -> None:
    with pytest.raises(ValueError, match="not found"):
        Murmur2Partitioner().partition("nope", None, b"k", None, b"v", _Cluster({}))
