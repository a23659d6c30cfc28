"""The at-least-once consumer loop: decode → handle → commit, with a dead-letter queue.

Offsets are committed only after the handler returned, and handlers commit their own DB
transaction (recording the event id) before returning, so a crash anywhere re-delivers
the message and the idempotent handler leaves one effect. A message that cannot be
decoded, or fails `max_attempts` times, goes to `<topic>.dlq` with the error and its
origin, and the stream behind it keeps flowing.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog

from shared.bus import Broker, Consumer, Message, Producer
from shared.dead_letters import DeadLetterSeal, dead_letter_body
from shared.events import Envelope, EventSchemaError, decode, dlq_topic, type_in
from shared.outbox_eager import EagerPublisher
from shared.outbox_relay import OutboxRelay

log = structlog.get_logger(__name__)

T = TypeVar("T")


Handler = Callable[[Envelope], None]


def route_by_type(handlers: Mapping[str, Handler], *, otherwise: Handler | None = None) -> Handler:
    """One consumer handler from a service's registry of event type → handler.

    A type with no handler goes to `otherwise` (a metric, say) or is skipped: a topic
    carries types that other services care about.
    """

    def handle(envelope: Envelope) -> None:
        handler = handlers.get(envelope.type, otherwise)
        if handler is not None:
            handler(envelope)

    return handle


class PoisonMessage(Exception):
    """Raised by a decoder or handler for a message that can never succeed: no retries."""


def decode_envelope(message: Message) -> Envelope:
    """Default decoder: a validated tenin envelope."""
    try:
        return decode(message.value)
    except EventSchemaError as exc:
        raise PoisonMessage(str(exc)) from exc


@dataclass
class ConsumerStats:
    handled: int = 0
    passed_over: int = 0  # of a type the group does not apply, by their type header
    dead_lettered: int = 0
    retries: int = 0
    last_batch_at: float = 0.0


def error_summary(error: BaseException) -> dict[str, str]:
    """What the log says of a failed message: the error's type and where it was raised,
    never its text (which may quote the message: personal data)."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno} {frames[-1].name}" if frames else ""
    return {"error_type": type(error).__name__, "raised_at": where}


class ConsumerLoop(Generic[T]):
    """Runs one consumer group member until stopped."""

    def __init__(
        self,
        broker: Broker,
        group_id: str,
        topics: Sequence[str],
        handler: Callable[[T], None],
        *,
        # Without a decoder T is Envelope; mypy cannot tie a default to a type variable.
        decoder: Callable[[Message], T] = decode_envelope,  # type: ignore[assignment]
        max_attempts: int = 3,
        retry_backoff_s: float = 0.2,
        batch_size: int = 100,
        seal: DeadLetterSeal | None = None,
        wait_for_commits: bool = False,
        publish_eagerly: OutboxRelay | None = None,
        bulk: bool = False,
        handles: Collection[str] | None = None,
    ) -> None:
        self._broker = broker
        self.group_id = group_id
        self._topics = list(topics)
        self._handler = handler
        self._decoder = decoder
        self._max_attempts = max(1, max_attempts)
        self._retry_backoff_s = retry_backoff_s
        self._batch_size = batch_size
        self._seal = seal
        # False (the default): offsets are committed without waiting for the broker, and
        # Kafka's consumer coalesces them, one commit a second at most (see the Consumer
        # port and shared/bus/kafka_consumer.py); True: each poll's, waiting.
        self._wait_for_commits = wait_for_commits
        # The outbox rows a poll's handlers commit are published by this thread once the
        # poll is handled, before its offsets are committed (shared/outbox_eager.py): one
        # claim per poll, not per message, when a burst arrives; a full poll's ack is
        # awaited after the next poll.
        self._eager = (
            EagerPublisher(self._process_poll, publish_eagerly) if publish_eagerly else None
        )
        # A group no customer waits on reads in bulk (Broker.consumer: fewer, fuller fetches).
        self.bulk = bulk
        # The event types the handler applies (None: any). A topic carries types other
        # services care about: a record whose type header names another type is passed
        # over undecoded (one without the header is decoded, and routed as before).
        self._handles = frozenset(handles) if handles is not None else None
        self.stats = ConsumerStats()
        self._consumer: Consumer | None = None
        self._dlq: Producer | None = None

    def _handle(self, message: Message, stop: threading.Event) -> None:
        """Handle one message, retrying in place (keeps per-key order), else dead-letter."""
        attempt = 0
        while True:
            attempt += 1
            try:
                self._handler(self._decoder(message))
                self.stats.handled += 1
                return
            except PoisonMessage as exc:
                self._dead_letter(message, exc, attempt)
                return
            except Exception as exc:
                if attempt >= self._max_attempts:
                    log.error(
                        "message_failed",
                        **self._where(message),
                        **error_summary(exc),
                        attempts=attempt,
                    )
                    self._dead_letter(message, exc, attempt)
                    return
                self.stats.retries += 1
                log.warning(
                    "message_retry", **self._where(message), **error_summary(exc), attempt=attempt
                )
                stop.wait(self._retry_backoff_s * attempt)

    def _dead_letter(self, message: Message, error: BaseException, attempts: int) -> None:
        assert self._dlq is not None
        self._dlq.send(
            dlq_topic(message.topic),
            message.key,
            dead_letter_body(message, self.group_id, error, attempts, self._seal),
            headers=[("error", type(error).__name__.encode("utf-8"))],
        )
        # The DLQ record must be durable before the offset moves past the message.
        self._dlq.flush(timeout=30)
        self.stats.dead_lettered += 1
        log.error("message_dead_lettered", **self._where(message), **error_summary(error))

    def _where(self, message: Message) -> dict[str, Any]:
        """Where a message came from, for the log (never its key or value: personal data)."""
        return {
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "group": self.group_id,
        }

    def run_once(self, stop: threading.Event, timeout_ms: int = 500) -> int:
        """Poll one batch, handle it, commit it; returns the batch size."""
        return self._handle_polled(self._poll(timeout_ms), stop)

    def _handle_polled(self, batch: list[Message], stop: threading.Event) -> int:
        if not batch or stop.is_set():
            # Stopping before starting the batch: nothing is in hand yet.
            if self._eager is not None:
                self._eager.settle()  # the last poll's records: acknowledged by now
            return 0
        if self._eager is None:
            self._process(batch, stop)
        else:
            # A full poll means a backlog: its ack is awaited after the next poll, so the
            # loop does not idle for it (shared/outbox_eager.py); else at once.
            self._eager((batch, stop), settle_later=len(batch) >= self._batch_size)
        self._commit(batch)
        return len(batch)

    def _poll(self, timeout_ms: int) -> list[Message]:
        if self._consumer is None:
            self._consumer = self._broker.consumer(self.group_id, self._topics, bulk=self.bulk)
            self._dlq = self._broker.producer()
        return self._consumer.poll(timeout_ms=timeout_ms, max_records=self._batch_size)

    def _commit(self, batch: list[Message]) -> None:
        """Commit a handled poll's offsets."""
        assert self._consumer is not None
        self._consumer.commit(batch, wait=self._wait_for_commits)
        self.stats.last_batch_at = time.time()

    def _process_poll(self, poll: tuple[list[Message], threading.Event]) -> None:
        self._process(*poll)

    def _process(self, batch: list[Message], stop: threading.Event) -> None:
        """Handle every message of a poll, one at a time, in order."""
        for message in self._wanted(batch):
            self._handle(message, stop)

    def _wanted(self, batch: list[Message]) -> list[Message]:
        """The messages of a poll the handler may apply: all but those whose type header
        names a type it does not handle (counted in `stats.passed_over`)."""
        if self._handles is None:
            return batch
        wanted = [m for m in batch if (t := type_in(m.headers)) is None or t in self._handles]
        self.stats.passed_over += len(batch) - len(wanted)
        return wanted

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set, then commit what is handled and leave the group."""
        backoff = 0.5
        try:
            while not stop.is_set():
                try:
                    self.run_once(stop)
                    backoff = 0.5
                except Exception:
                    # Broker restarts and rebalances land here: nothing was committed for
                    # the failed batch, so it is delivered again once the consumer is back.
                    log.exception("consumer_loop_error", group=self.group_id)
                    self.close()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            self.close()

    def close(self) -> None:
        """Publish what is in hand, leave the group and release the producer."""
        if self._eager is not None:
            self._eager.settle()
        consumer, dlq = self._consumer, self._dlq
        self._consumer, self._dlq = None, None
        for closeable in (consumer, dlq):
            if closeable is None:
                continue
            try:
                closeable.close()
            except Exception:
                log.exception("consumer_close_failed", group=self.group_id)


class BatchConsumerLoop(ConsumerLoop[T]):
    """A consumer loop whose handler takes every message of a poll at once (one transaction
    for the lot), with the same guarantees as the per-message loop.

    The offsets are committed after the handler returned. When it raises, nothing of the
    batch was committed by it, so the batch is split in halves and each half handled again
    (in order, so per-key order holds): a poison message ends up alone, is retried like
    any message and dead-lettered, and the rest commits. A message that cannot be decoded
    is dead-lettered before the batch is handled.
    """

    def __init__(
        self,
        broker: Broker,
        group_id: str,
        topics: Sequence[str],
        handler: Callable[[list[T]], None],
        **options: Any,
    ) -> None:
        super().__init__(broker, group_id, topics, lambda one: handler([one]), **options)
        self._batch_handler = handler
        self.splits = 0

    def _process(self, batch: list[Message], stop: threading.Event) -> None:
        self._split(self._decoded(batch, stop), stop)

    def _decoded(self, batch: list[Message], stop: threading.Event) -> list[tuple[Message, T]]:
        """The poll's wanted messages, decoded; one that cannot be is handled alone now."""
        decoded: list[tuple[Message, T]] = []
        for message in self._wanted(batch):
            try:
                decoded.append((message, self._decoder(message)))
            except Exception:
                self._handle(message, stop)  # dead-letters a poison one, retries the rest
        return decoded

    def _split(self, items: list[tuple[Message, T]], stop: threading.Event) -> None:
        if not items:
            return
        if len(items) == 1:
            self._handle(items[0][0], stop)
            return
        try:
            self._batch_handler([value for _, value in items])
            self.stats.handled += len(items)
        except Exception as exc:
            self._halve(items, stop, exc)

    def _halve(
        self, items: list[tuple[Message, T]], stop: threading.Event, error: Exception
    ) -> None:
        """A batch whose handler raised: each half is handled again, in order."""
        self.splits += 1
        log.warning(
            "batch_split", **self._where(items[0][0]), size=len(items), **error_summary(error)
        )
        middle = len(items) // 2
        self._split(items[:middle], stop)
        self._split(items[middle:], stop)
