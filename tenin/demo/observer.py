"""Watches `offer.decisions` the way an analyst's notebook would: the model's score per code,
for the calibration chart. It reads the topic; it changes nothing."""

from __future__ import annotations

import threading
import uuid

from shared.bus import Broker
from shared.events import EventSchemaError, decode


class DecisionObserver:
    """Collects each coupon's model score and every decision's arm from `offer.decisions`."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decision-observer", daemon=True)
        self.scores: dict[str, float] = {}
        self.arms: dict[str, int] = {}
        self.ready = threading.Event()

    def start(self) -> DecisionObserver:
        self._broker.ensure_topics(["offer.decisions"])
        self._thread.start()
        return self

    def _run(self) -> None:
        consumer = self._broker.consumer(
            f"demo.observer.{uuid.uuid4().hex[:8]}", ["offer.decisions"]
        )
        try:
            while not self._stop.is_set():
                messages = consumer.poll(timeout_ms=300, max_records=500)
                self.ready.set()
                for message in messages:
                    try:
                        payload = decode(message.value).payload
                    except EventSchemaError:
                        continue
                    self.arms[payload["arm"]] = self.arms.get(payload["arm"], 0) + 1
                    coupon = payload.get("coupon")
                    if coupon and payload.get("score") is not None:
                        self.scores[coupon["code"]] = float(payload["score"])
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
