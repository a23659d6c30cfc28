"""A campaign_engine decision worker for the SIGKILL-mid-batch test: the real worker's
components on a test topic, which kills itself at a chosen point of a batch.

    python -m tests.support.kill_decider DATABASE_URL TOPIC GROUP MODE EXPECTED

MODE: `after-reserve` (every chosen offer reserved in Redis, nothing committed),
`after-commit` (the batch's transaction committed, its offsets not; a full poll is written
while the next is prepared, so that one may hold reservations too), or `drain` (run until
EXPECTED decisions are stored, then stop cleanly). Redis and Kafka come from the
environment, as for `tenin worker`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select

from services.campaign_engine.bootstrap import bootstrap
from services.campaign_engine.budget.reservation_store import Refused, Reservation, Wanted
from services.campaign_engine.models import Decision
from services.campaign_engine.worker import components, prepare
from shared.bus import broker_from_settings
from shared.config import Settings
from shared.runtime import run_components


class KilledAfterReserving:
    """The worker's reservation store, dying right after the first batch reserved."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def reserve_many(self, wanted: Sequence[Wanted]) -> list[Reservation | Refused]:
        taken = self._store.reserve_many(wanted)
        if any(isinstance(t, Reservation) for t in taken):
            os.kill(os.getpid(), signal.SIGKILL)
        return list(taken)


def main() -> int:
    database_url, topic, group, mode, expected = sys.argv[1:6]
    settings = replace(Settings.from_env(service="campaign_engine"), database_url=database_url)
    engine = bootstrap(settings, pre_ping=False)
    on_redis = engine.on_redis()
    broker = broker_from_settings(engine.settings)
    prepare(engine, broker)
    if mode == "after-reserve":
        engine._on_redis = replace(
            on_redis, reservations=KilledAfterReserving(on_redis.reservations)
        )
    if mode == "after-commit":
        prepare_batch = engine.prepare_batch

        def prepare_then_die_once_written(envelopes: Any) -> Any:
            finish = prepare_batch(envelopes)

            def finish_then_die() -> Any:  # on the loop's writer thread after a full poll,
                decided = finish()  # while the next poll is prepared (reserved in Redis)
                os.kill(os.getpid(), signal.SIGKILL)  # committed; the offsets are not
                return decided

            return finish_then_die

        engine.prepare_batch = prepare_then_die_once_written  # type: ignore[method-assign]
    stop = threading.Event()

    def stop_when_done() -> None:
        while not stop.wait(0.2):
            with engine.sessions() as session:
                stored = session.scalar(select(func.count()).select_from(Decision))
            if int(stored or 0) >= int(expected):
                stop.set()

    threading.Thread(target=stop_when_done, daemon=True).start()
    parts = components(
        engine,
        broker,
        groups=(group, f"{group}.updates"),
        request_topics=[topic],
        update_topics=[f"{topic}.updates"],
    )
    return run_components(parts, stop)


if __name__ == "__main__":
    sys.exit(main())
