"""The readiness probe answers on every broker flavour, and reuses one client."""

from __future__ import annotations

import kafka
import pytest

from shared.bus import Broker, KafkaBroker
from shared.readiness import broker_answers


def test_the_readiness_probe_answers_and_keeps_one_client(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []
    real = kafka.KafkaConsumer

    def counted(*args: object, **kwargs: object) -> object:
        built.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(kafka, "KafkaConsumer", counted)
    assert all(broker_answers(broker) for _ in range(3))
    assert len(built) == (1 if isinstance(broker, KafkaBroker) else 0)
