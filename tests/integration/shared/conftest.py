"""Brokers for the contract suite: real Apache Kafka, Tansu, and the in-memory twin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.bus import KAFKA_PROFILE, TANSU_PROFILE, Broker, InMemoryBroker, KafkaBroker
from shared.embedded import EmbeddedStack


@pytest.fixture(scope="session")
def tansu_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker (the embedded default's), started for this session."""
    stack = EmbeddedStack(tmp_path_factory.mktemp("tansu"))
    env = stack.start()
    yield env["KAFKA_BOOTSTRAP_SERVERS"]
    stack.stop()


@pytest.fixture(params=["kafka", "tansu", "memory"])
def broker(request: pytest.FixtureRequest) -> Broker:
    """Each contract test runs once per broker implementation."""
    if request.param == "kafka":
        services = request.getfixturevalue("real_services")
        return KafkaBroker(services["KAFKA_BOOTSTRAP_SERVERS"], KAFKA_PROFILE)
    if request.param == "tansu":
        return KafkaBroker(request.getfixturevalue("tansu_bootstrap"), TANSU_PROFILE)
    return InMemoryBroker()
