"""Readiness probes that never hold a request thread (docs/architecture.md § Invariants, readiness).

Each dependency check runs on its own background thread, at most one at a time. /readyz
answers from the last result: a result is fresh for `ttl_s`; once stale, the next probe
starts a refresh and still answers at once with what it knows. Only the very first probe
waits, and for at most `budget_s`. A check still running after `budget_s` counts as
failed, so a dependency that hangs (Kafka behind a dropped port) reads as not ready
within the budget, however many probes arrive meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger(__name__)

ReadinessCheck = Callable[[], bool]

DEFAULT_BUDGET_S = 1.5
DEFAULT_TTL_S = 5.0


class Probe:
    """One dependency's check: single-flight on a background thread, result cached."""

    def __init__(
        self, name: str, check: ReadinessCheck, *, budget_s: float, clock: Callable[[], float]
    ) -> None:
        self.name = name
        self._check = check
        self._budget_s = budget_s
        self._clock = clock
        self._lock = threading.Lock()
        self._answered = threading.Event()  # set once the first run has finished
        self._result: bool | None = None
        self._checked_at = float("-inf")
        self._running_since: float | None = None
        self._first_started: float | None = None

    def refresh_if_older_than(self, ttl_s: float) -> None:
        """Start a run unless one is running or the last result is younger than `ttl_s`."""
        with self._lock:
            now = self._clock()
            if self._running_since is not None or now - self._checked_at < ttl_s:
                return
            self._running_since = now
            if self._first_started is None:
                self._first_started = now
        threading.Thread(target=self._run, name=f"readiness-{self.name}", daemon=True).start()

    def wait_for_first_answer(self) -> None:
        """Block until the first run has finished, at most until its budget is spent:
        once it is, no probe waits any more."""
        if self._answered.is_set() or self._first_started is None:
            return
        self._answered.wait(max(0.0, self._first_started + self._budget_s - self._clock()))

    def answer(self) -> bool:
        """The last result; False when none yet or when a run has overrun the budget."""
        with self._lock:
            overrun = (
                self._running_since is not None
                and self._clock() - self._running_since >= self._budget_s
            )
            return bool(self._result) and not overrun

    def _run(self) -> None:
        try:
            result = bool(self._check())
        except Exception:
            log.exception("readiness_check_failed", check=self.name)
            result = False
        with self._lock:
            self._result = result
            self._checked_at = self._clock()
            self._running_since = None
        self._answered.set()


class Probes:
    """Every dependency's probe, answered together within one budget."""

    def __init__(
        self,
        checks: Mapping[str, ReadinessCheck],
        *,
        budget_s: float = DEFAULT_BUDGET_S,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._probes = [
            Probe(name, check, budget_s=budget_s, clock=clock) for name, check in checks.items()
        ]

    def results(self) -> dict[str, bool]:
        """Each dependency's answer, refreshed in the background when stale."""
        for probe in self._probes:
            probe.refresh_if_older_than(self._ttl_s)
        for probe in self._probes:
            probe.wait_for_first_answer()
        return {probe.name: probe.answer() for probe in self._probes}
