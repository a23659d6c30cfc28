"""ensure_topics returns only once the broker's metadata shows the partitions it asked for.

The controller accepts a growth before the broker serving metadata applies it; on a busy
machine a describe right after `create_partitions` still saw the old count (1 in 60 here).
These cases drive the wait with a stand-in admin client, so the timing is exact.
"""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import CapturingLogger

from shared.bus import kafka_adapter
from shared.bus.kafka_adapter import KafkaBroker
from shared.bus.profiles import KAFKA_PROFILE


class LaggingAdmin:
    """Reports `before` partitions for the first `lag` describes after a change."""

    def __init__(self, before: int, lag: int) -> None:
        self.partitions = before
        self.visible = before
        self.lag = lag
        self.describes = 0

    def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        self.describes += 1
        if self.describes > self.lag:
            self.visible = self.partitions
        return [{"name": t, "error_code": 0, "partitions": [{}] * self.visible} for t in topics]


def test_the_wait_returns_once_the_metadata_shows_the_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kafka_adapter, "TOPIC_METADATA_POLL_S", 0.0)
    admin = LaggingAdmin(before=2, lag=3)
    admin.partitions = 4
    KafkaBroker("unused:9092", KAFKA_PROFILE)._await_partitions(admin, {"t": 4})
    assert admin.describes == 4
    assert admin.visible == 4


def test_the_wait_gives_up_with_a_warning_after_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kafka_adapter, "TOPIC_METADATA_POLL_S", 0.0)
    monkeypatch.setattr(kafka_adapter, "TOPIC_METADATA_WAIT_S", 0.05)
    admin = LaggingAdmin(before=2, lag=10**9)
    admin.partitions = 4
    # The module's own logger is swapped: structlog caches a configured logger on first
    # use, so a capture set up in the test would miss it once the suite has logged.
    logged = CapturingLogger()
    monkeypatch.setattr(kafka_adapter, "log", logged)
    KafkaBroker("unused:9092", KAFKA_PROFILE)._await_partitions(admin, {"t": 4})
    assert admin.visible == 2
    assert [(c.method_name, c.args, c.kwargs) for c in logged.calls] == [
        ("warning", ("topic_partitions_not_visible",), {"topics": ["t"]})
    ]
