"""A batch consumer loop that writes one poll while it reads the next.

Its handler works in two steps: `prepare(batch)` reads and decides, in the loop's thread,
and returns `finish`, which writes and commits the batch's transaction. After a **full**
poll (a backlog: throughput counts) `finish` runs on the loop's writer thread while the
loop polls, decodes and prepares the next poll, so the database's work on one batch
overlaps the loop's on the next (docs/architecture.md § Hot paths). Before it hands over
the next `finish`, the loop waits for the last one; a poll's offsets are committed only
once its `finish` returned, so they still follow its transaction, as in every loop
(shared/consumer.py). A poll that is not full is prepared and finished at once, in this
thread: someone may be waiting on it. Without `overlap` (SQLite, where one transaction's
locks would hold up the other's commit) every poll is.

When `finish` raises (its transaction rolled back), its poll is handled again in this
thread as BatchConsumerLoop handles a failed batch: split in halves until a poison message
is alone, retried and dead-lettered, the rest committed. By then the next poll may have been
prepared already, so a handler must accept a poll prepared before the one before it was
written: the decision handler does (a request prepared twice loses on its unique key,
docs/architecture.md § Decisions). Closing the loop waits for the last `finish`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog

from shared.bus import Broker, Message
from shared.consumer import BatchConsumerLoop

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Reads and decides a batch; returns what writes and commits it.
Prepare = Callable[[list[T]], Callable[[], object]]


@dataclass
class _Writing(Generic[T]):
    """A poll whose `finish` runs on the writer thread."""

    batch: list[Message]
    items: list[tuple[Message, T]]
    finished: Future[object]


class PipelinedBatchConsumerLoop(BatchConsumerLoop[T]):
    """BatchConsumerLoop with a two-step handler whose second step, after a full poll, runs
    on a writer thread while the next poll is prepared."""

    def __init__(
        self,
        broker: Broker,
        group_id: str,
        topics: Sequence[str],
        prepare: Prepare[T],
        *,
        overlap: bool = True,
        **options: Any,
    ) -> None:
        def both_steps(batch: list[T]) -> None:  # a poll handled at once, in this thread
            prepare(batch)()

        super().__init__(broker, group_id, topics, both_steps, **options)
        self._prepare = prepare
        self._overlap = overlap
        self._writing: _Writing[T] | None = None
        self._writer: ThreadPoolExecutor | None = None

    def run_once(self, stop: threading.Event, timeout_ms: int = 500) -> int:
        """Poll one batch and handle it; a full one is written while the next is read."""
        batch = self._poll(timeout_ms)
        if not batch or stop.is_set() or len(batch) < self._batch_size or not self._overlap:
            self._settle(stop)  # the last poll first: offsets in order
            return self._handle_polled(batch, stop)
        items = self._decoded(batch, stop)
        finish: Callable[[], object] | None = None
        failed: Exception | None = None
        if items:
            try:
                finish = self._prepare([value for _, value in items])
            except Exception as exc:
                failed = exc
        try:
            self._settle(stop)
        except BaseException:
            if finish is not None:  # the loop is failing: write it anyway, offsets uncommitted
                _write_unsettled(finish)  # (it is delivered again, and found written)
            raise
        if finish is None:  # nothing to write, or preparing failed: handled here, now
            if failed is not None:
                self._halve(items, stop, failed)
            self._commit(batch)
            return len(batch)
        self._writing = _Writing(batch, items, self._writer_thread().submit(finish))
        return len(batch)

    def _settle(self, stop: threading.Event) -> None:
        """Wait for the poll being written; if its `finish` raised, handle it again here;
        then commit its offsets."""
        writing, self._writing = self._writing, None
        if writing is None:
            return
        try:
            writing.finished.result()
            self.stats.handled += len(writing.items)
        except Exception as exc:
            self._halve(writing.items, stop, exc)
        self._commit(writing.batch)

    def _writer_thread(self) -> ThreadPoolExecutor:
        if self._writer is None:
            name = f"{threading.current_thread().name}-writer"
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        return self._writer

    def close(self) -> None:
        """Finish the poll being written (its offsets committed if it was), then close."""
        if self._writing is not None:
            try:
                if self._consumer is not None:
                    self._settle(threading.Event())
                else:
                    self._writing.finished.exception()  # written or not: re-delivered
            except Exception:
                # Its offsets are not committed: it is delivered again, and found decided.
                log.exception("pipelined_batch_not_settled", group=self.group_id)
            self._writing = None
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        super().close()


def _write_unsettled(finish: Callable[[], object]) -> None:
    """Write a prepared poll whose offsets will not be committed (so its transaction and
    what it holds are not left open); its failure is logged: the poll comes again."""
    try:
        finish()
    except Exception:
        log.exception("pipelined_batch_not_written")
