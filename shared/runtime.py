"""Running a worker process: its consumer loops and outbox relay in threads, until SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

Component = Callable[[threading.Event], None]


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop`: take no new work, finish what is in hand, exit."""

    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("stop_signal_received", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def run_components(components: Mapping[str, Component], stop: threading.Event) -> int:
    """Run each component in its own thread; if one dies, stop them all. Returns an exit code."""
    failed: list[str] = []

    def guard(name: str, component: Component) -> None:
        try:
            component(stop)
        except Exception:
            log.exception("component_crashed", component=name)
            failed.append(name)
            stop.set()

    threads = [
        threading.Thread(target=guard, args=(name, c), name=name, daemon=True)
        for name, c in components.items()
    ]
    for t in threads:
        t.start()
    log.info("worker_started", components=list(components))
    while not stop.is_set():
        stop.wait(0.5)
    for t in threads:
        t.join(timeout=30)
    log.info("worker_stopped", failed=failed)
    return 1 if failed else 0
