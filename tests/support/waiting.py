"""Bounded waiting for asynchronous results (never bare sleeps), and running a worker
component in a thread while a test waits on it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T = probe()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)
        last = probe()
    return last


def holds_for(
    probe: Callable[[], bool], *, seconds: float, interval: float = 0.25, what: str = "condition"
) -> None:
    """Assert `probe` stays true for a whole window: how a test shows nothing more happens."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not probe():
            raise AssertionError(f"{what} stopped holding")
        time.sleep(interval)


@contextmanager
def running(component: Callable[[threading.Event], None]) -> Iterator[None]:
    """Run `component(stop)` (a consumer loop's or a relay's `run`) in a daemon thread for
    the block; then set its stop event and wait for it to finish."""
    stop = threading.Event()
    thread = threading.Thread(target=component, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
