"""Publishing a handler's outbox rows from its own thread, right after it commits.

For a path someone waits on (webhook → coupon: the customer waits), the relay's wake-up is
a thread hand-off on a busy GIL and one more claim transaction later. `publishing_eagerly`
wraps a handler so that, once it returns, the same thread claims and publishes what is
committed, exactly as the relay does (`OutboxRelay.publish_committed`: the same claim with
SKIP LOCKED, the same wait for the broker's ack, the same mark, under the relay's lock so
this process publishes in claim order). Its commits do not wake this process's relay
(`shared.outbox_wake.signals_held`), which would find the rows claimed already; the
NOTIFY still reaches other processes' relays, and whichever claims a row first publishes it,
so a row goes out once. The relay stays the safety net: what the eager path cannot publish
(the relay is mid-batch, the broker fails) is left to it, woken at once
(docs/architecture.md § Hot paths). A consumer loop wraps a whole poll this way
(`ConsumerLoop(..., publish_eagerly=relay)`): one claim and one ack per poll.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from shared.outbox_relay import OutboxRelay
from shared.outbox_wake import SIGNALS, signals_held

T = TypeVar("T")


def publishing_eagerly(handler: Callable[[T], None], relay: OutboxRelay) -> Callable[[T], None]:
    """`handler`, followed in the same thread by publishing what it committed to `relay`'s
    outbox, instead of waking the relay's thread for it."""

    def handle(item: T) -> None:
        with signals_held() as committed:
            try:
                handler(item)
            finally:
                if relay.schema in committed:
                    committed.discard(relay.schema)
                    relay.publish_committed()
                if committed:  # another schema's outbox: its relay as usual
                    SIGNALS.fire(set(committed))
                    committed.clear()

    return handle
