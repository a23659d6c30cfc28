"""PipelinedBatchConsumerLoop on the in-memory broker: a full poll is written on the writer
thread while the next is prepared, its offsets committed only once it is written; a poll
that is not full is written at once; a failed write is handled again by splitting; closing
waits for the write in flight."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from shared.bus import InMemoryBroker
from shared.consumer_pipelined import PipelinedBatchConsumerLoop
from shared.events import Envelope, dlq_topic
from tests.unit.shared.test_batch_consumer import publish as send_in_order

TOPIC = "pipelined.requests"
GROUP = "g"
BATCH = 10


def publish(broker: InMemoryBroker, customers: list[str]) -> None:
    send_in_order(broker, customers, topic=TOPIC, undecodable=False)


def committed(broker: InMemoryBroker) -> int:
    return broker._groups[GROUP].committed.get((TOPIC, 0), 0)


class TwoSteps:
    """A two-step handler that records each step (and the thread it ran on); the write of a
    batch holding a poison customer fails, like a transaction; `gate`, when given, holds the
    first write until it is set."""

    def __init__(
        self, poison: set[str] | frozenset[str] = frozenset(), gate: threading.Event | None = None
    ) -> None:
        self.poison = set(poison)
        self.gate = gate
        self.steps: list[tuple[str, str, str]] = []  # (step, first customer, thread)
        self.written: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, batch: list[Envelope]) -> Callable[[], object]:
        customers = [e.payload["customer_id"] for e in batch]
        self._note("prepare", customers)

        def finish() -> object:
            if self.gate is not None and not self.written:
                assert self.gate.wait(5)
            self._note("finish", customers)
            if self.poison & set(customers):
                raise RuntimeError("violates a constraint")
            with self.lock:
                self.written += customers
            return None

        return finish

    def _note(self, step: str, customers: list[str]) -> None:
        with self.lock:
            self.steps.append((step, customers[0], threading.current_thread().name))


def loop(broker: InMemoryBroker, handler: TwoSteps) -> PipelinedBatchConsumerLoop[Envelope]:
    return PipelinedBatchConsumerLoop(
        broker, GROUP, [TOPIC], handler, retry_backoff_s=0.0, batch_size=BATCH
    )


def test_a_full_poll_is_written_while_the_next_is_prepared_and_committed_after() -> None:
    broker = InMemoryBroker()
    customers = [f"c{i}" for i in range(25)]
    publish(broker, customers)
    gate = threading.Event()
    handler = TwoSteps(gate=gate)
    consumer = loop(broker, handler)
    stop = threading.Event()

    assert consumer.run_once(stop, timeout_ms=0) == BATCH  # c0..c9: prepared, being written
    assert committed(broker) == 0  # not written yet: its offsets wait
    threading.Timer(0.2, gate.set).start()
    assert consumer.run_once(stop, timeout_ms=0) == BATCH  # c10..c19 prepared, then c0.. settled
    assert committed(broker) == BATCH
    assert consumer.run_once(stop, timeout_ms=0) == 5  # not full: c20..c24 written at once
    assert committed(broker) == 25
    assert handler.written == customers  # in order

    steps = [(step, first) for step, first, _ in handler.steps]
    assert steps == [
        ("prepare", "c0"),
        ("prepare", "c10"),  # while c0..c9 were being written
        ("finish", "c0"),
        ("finish", "c10"),
        ("prepare", "c20"),
        ("finish", "c20"),
    ]
    threads = {(step, first): thread for step, first, thread in handler.steps}
    loop_thread = threading.current_thread().name
    assert threads[("finish", "c0")] == threads[("finish", "c10")] == f"{loop_thread}-writer_0"
    assert threads[("prepare", "c10")] == threads[("finish", "c20")] == loop_thread
    assert consumer.stats.handled == 25
    consumer.close()


def test_a_write_that_fails_is_split_until_the_poison_is_alone_and_the_rest_commits() -> None:
    broker = InMemoryBroker()
    customers = [f"c{i}" for i in range(20)]
    publish(broker, customers)
    handler = TwoSteps(poison={"c3"})
    consumer = loop(broker, handler)
    stop = threading.Event()
    consumer.run_once(stop, timeout_ms=0)  # c0..c9 written on the writer: fails
    consumer.run_once(stop, timeout_ms=0)  # c10..c19 prepared; c0..c9 split here
    consumer.run_once(stop, timeout_ms=0)  # nothing more: c10..c19 settled
    assert handler.written == [c for c in customers if c != "c3"]  # order kept
    assert committed(broker) == 20
    letters = broker.consumer("dlq-reader", [dlq_topic(TOPIC)]).poll(timeout_ms=0)
    assert len(letters) == 1 and consumer.stats.dead_lettered == 1
    assert consumer.splits >= 3  # 10 → 5 → 2/3 → 1
    consumer.close()


def test_a_full_poll_whose_prepare_fails_is_split_at_once() -> None:
    broker = InMemoryBroker()
    customers = [f"c{i}" for i in range(BATCH)]
    publish(broker, customers)

    class FailsToPrepare(TwoSteps):
        def __call__(self, batch: list[Envelope]) -> Callable[[], object]:
            if any(e.payload["customer_id"] == "c7" for e in batch):
                raise RuntimeError("cannot be decided")
            return super().__call__(batch)

    handler = FailsToPrepare()
    consumer = loop(broker, handler)
    assert consumer.run_once(threading.Event(), timeout_ms=0) == BATCH
    assert handler.written == [c for c in customers if c != "c7"]
    assert committed(broker) == BATCH
    assert consumer.stats.dead_lettered == 1
    consumer.close()


@pytest.mark.parametrize("fails", [False, True])
def test_closing_waits_for_the_write_in_flight(fails: bool) -> None:
    broker = InMemoryBroker()
    customers = [f"c{i}" for i in range(BATCH)]
    publish(broker, customers)
    gate = threading.Event()
    handler = TwoSteps(poison={"c5"} if fails else set(), gate=gate)
    consumer = loop(broker, handler)
    consumer.run_once(threading.Event(), timeout_ms=0)
    threading.Timer(0.2, gate.set).start()
    consumer.close()  # waits for the write; a failed one is handled again first
    assert handler.written == [c for c in customers if not (fails and c == "c5")]
    assert committed(broker) == BATCH


def test_a_write_in_flight_when_the_loop_dies_is_delivered_again_not_lost() -> None:
    broker = InMemoryBroker()
    customers = [f"c{i}" for i in range(BATCH)]
    publish(broker, customers)
    handler = TwoSteps(poison=set(customers))  # every write fails, every time
    consumer = loop(broker, handler)
    consumer.run_once(threading.Event(), timeout_ms=0)
    member, consumer._consumer = consumer._consumer, None  # the broker is gone (a restart):
    assert member is not None
    member.close()  # its session expires, and there is nothing to commit on
    consumer.close()
    assert committed(broker) == 0
    again = TwoSteps()
    loop(broker, again).run_once(threading.Event(), timeout_ms=0)
    assert again.written == customers  # delivered again, whole


def test_without_overlap_a_full_poll_is_written_at_once_in_the_loop_thread() -> None:
    broker = InMemoryBroker()
    customers = [f"c{i}" for i in range(BATCH)]
    publish(broker, customers)
    handler = TwoSteps()
    consumer = PipelinedBatchConsumerLoop(
        broker, GROUP, [TOPIC], handler, overlap=False, batch_size=BATCH
    )
    assert consumer.run_once(threading.Event(), timeout_ms=0) == BATCH
    assert handler.written == customers and committed(broker) == BATCH  # written already
    assert {thread for *_, thread in handler.steps} == {threading.current_thread().name}
    consumer.close()


def test_a_prepared_poll_is_written_even_when_the_loop_fails_before_handing_it_over() -> None:
    broker = InMemoryBroker()
    customers = [f"c{i}" for i in range(2 * BATCH)]
    publish(broker, customers)
    handler = TwoSteps()
    consumer = loop(broker, handler)
    consumer.run_once(threading.Event(), timeout_ms=0)  # c0..c9 being written
    member = consumer._consumer
    assert member is not None

    def broker_gone(*_: object, **__: object) -> None:
        raise ConnectionError("broker gone")

    member.commit = broker_gone  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        consumer.run_once(threading.Event(), timeout_ms=0)  # c10..c19 prepared; c0.. not settled
    assert handler.written == customers  # both polls written: no transaction left open
    assert committed(broker) == 0  # and nothing committed: both are delivered again
