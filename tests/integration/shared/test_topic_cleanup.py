"""On real Kafka, a run deletes the topics it made and no others (tests/support/kafka_tools.py):
a stack's namespace, or whatever appeared since a snapshot, never Kafka's own topics."""

from __future__ import annotations

import uuid

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from tests.support.kafka_tools import (
    delete_namespace,
    delete_topics,
    delete_topics_made_since,
    topic_names,
)
from tests.support.waiting import wait_for


def _create(bootstrap: str, names: list[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-topic-cleanup")
    try:
        admin.create_topics([NewTopic(n, num_partitions=2, replication_factor=1) for n in names])
    finally:
        admin.close()
    wait_for(lambda: set(names) <= topic_names(bootstrap), what="the topics to exist")


def test_a_namespace_goes_and_its_neighbours_stay(real_services: dict[str, str]) -> None:
    bootstrap = real_services["KAFKA_BOOTSTRAP_SERVERS"]
    tag = uuid.uuid4().hex[:8]
    mine = [f"clean-{tag}.offer.requests", f"clean-{tag}.offer.decisions"]
    neighbour = f"clean-{tag}x.offer.requests"  # shares a prefix, not the namespace
    _create(bootstrap, [*mine, neighbour])
    try:
        assert delete_namespace(bootstrap, f"clean-{tag}.") == 2
        wait_for(lambda: not set(mine) & topic_names(bootstrap), what="the namespace to go")
        assert neighbour in topic_names(bootstrap)
    finally:
        delete_namespace(bootstrap, f"clean-{tag}x.")
    wait_for(lambda: neighbour not in topic_names(bootstrap), what="the neighbour to go")


def test_only_the_topics_made_since_the_snapshot_go(real_services: dict[str, str]) -> None:
    bootstrap = real_services["KAFKA_BOOTSTRAP_SERVERS"]
    tag = uuid.uuid4().hex[:8]
    older, newer = f"since-{tag}.older", f"since-{tag}.newer"
    _create(bootstrap, [older])
    before = topic_names(bootstrap)
    _create(bootstrap, [newer])
    try:
        assert delete_topics_made_since(bootstrap, before) >= 1
        wait_for(lambda: newer not in topic_names(bootstrap), what="the newer topic to go")
        assert older in topic_names(bootstrap)
    finally:
        delete_namespace(bootstrap, f"since-{tag}.")


def test_kafkas_own_topics_are_never_asked_for() -> None:
    # Nothing is sent: the broker address is one where no broker listens.
    assert delete_topics("127.0.0.1:9", ["__consumer_offsets", "__transaction_state"]) == 0


def test_an_empty_namespace_is_refused() -> None:
    with pytest.raises(ValueError, match="every topic"):
        delete_namespace("127.0.0.1:9", "")
