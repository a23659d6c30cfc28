"""Publishing a handler's outbox rows from its own thread, right after it commits.

For a path someone waits on (webhook → coupon: the customer waits), the relay's wake-up is
a thread hand-off on a busy GIL and one more claim transaction later. An `EagerPublisher`
wraps a handler so that, once it returns, the same thread claims what is committed and
hands it to the producer, exactly as the relay does (`OutboxRelay.send_committed`: the same
claim with SKIP LOCKED, under the relay's lock so this process sends in claim order). Its
commits do not wake this process's relay (`shared.outbox_wake.signals_held`), which would
find the rows claimed already; the NOTIFY still reaches other processes' relays, and
whichever claims a row first publishes it, so a row goes out once. The relay stays the
safety net: what the eager path cannot publish (the relay is mid-claim, the broker fails)
is left to it, woken at once (docs/architecture.md § Hot paths). A consumer loop wraps a
whole poll this way (`ConsumerLoop(..., publish_eagerly=relay)`): one claim per poll.

When the caller says so (`settle_later`: a consumer loop whose poll was full, so a backlog
is waiting and throughput counts), waiting for the broker's ack is pipelined on
PostgreSQL: the claim's transaction (its row locks) stays open while the thread goes on to
its next item, and the next call (or `settle`, which the consumer loop calls when a poll
brings nothing and when it closes) waits for the ack and marks the rows sent. The thread no
longer idles for the ack (~10% of a decision loop's time, measured: docs/architecture.md
§ Hot paths). Otherwise (a poll that was not full: someone may be waiting on it) the ack is
awaited at once, as the flush also sends the records without the producer's linger and
gives its network thread the GIL: pipelining every poll cost the chat path ~8 ms a turn
(bench/chat_e2e_latency.py). A crash before the mark rolls the claim back: the relay
publishes the rows again, a duplicate on the wire that consumers drop by `event_id`. On
SQLite a transaction holds the database's write lock, so there the ack is always awaited
at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from shared.outbox_relay import Claimed, OutboxRelay
from shared.outbox_wake import SIGNALS, signals_held

T = TypeVar("T")


class EagerPublisher(Generic[T]):
    """`handler`, followed in the same thread by publishing what it committed to `relay`'s
    outbox, instead of waking the relay's thread for it. Each thread's claim awaiting its
    ack is its own."""

    def __init__(self, handler: Callable[[T], None], relay: OutboxRelay) -> None:
        self._handler = handler
        self._relay = relay
        self._local = threading.local()

    def __call__(self, item: T, *, settle_later: bool = False) -> None:
        """Handle `item`, then publish what it committed; with `settle_later` the broker's
        ack is awaited (and the rows marked sent) by the next call or `settle`."""
        with signals_held() as committed:
            try:
                self._handler(item)
            finally:
                self.settle()  # the last claim first: one open claim per thread
                if self._relay.schema in committed:
                    committed.discard(self._relay.schema)
                    self._send(settle_later)
                if committed:  # another schema's outbox: its relay as usual
                    SIGNALS.fire(set(committed))
                    committed.clear()

    def settle(self) -> int:
        """Wait for the ack of this thread's last claim and mark it sent (never raises);
        returns how many rows it marked."""
        claimed: Claimed | None = getattr(self._local, "claimed", None)
        if claimed is None:
            return 0
        self._local.claimed = None
        return self._relay.settle_sent(claimed)

    def _send(self, settle_later: bool) -> None:
        claimed = self._relay.send_committed()
        if claimed is None:
            return
        if settle_later and claimed.on_postgresql:
            self._local.claimed = claimed
        else:
            self._relay.settle_sent(claimed)
