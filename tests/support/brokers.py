"""Helpers for driving a broker in tests."""

from __future__ import annotations

import time

from shared.bus import Consumer, Message


def drain(consumer: Consumer, count: int, timeout: float = 60.0) -> list[Message]:
    """Poll until `count` messages arrived (or fail after `timeout` seconds)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(got)} of {count} messages within {timeout}s")
        got.extend(consumer.poll(timeout_ms=500, max_records=500))
    return got


def poll_quietly(consumer: Consumer, seconds: float) -> list[Message]:
    """Everything that arrives within `seconds` (used to show that nothing more comes)."""
    got: list[Message] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got.extend(consumer.poll(timeout_ms=300, max_records=500))
    return got
