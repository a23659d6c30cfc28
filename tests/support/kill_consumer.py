"""A consumer process for the SIGKILL test: it applies each event idempotently and, when
told to, kills itself after the DB commit and before the offset commit."""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid

from sqlalchemy import text

from services.campaign_engine.models import ProcessedEvent
from shared.bus import KAFKA_PROFILE, KafkaBroker
from shared.consumer import ConsumerLoop
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.events import Envelope
from shared.idempotency import first_time


def main() -> int:
    database_url, bootstrap, topic, group, effects_table, mode = sys.argv[1:7]
    sessions = make_session_factory(make_engine(database_url, pool_size=1))
    stop = threading.Event()

    def handle(envelope: Envelope) -> None:
        with unit_of_work(sessions) as session:
            # Counts deliveries, applied or not, so the test can see the redelivery.
            session.execute(
                text(f"INSERT INTO {effects_table}_deliveries (event_id) VALUES (:e)"),
                {"e": str(envelope.event_id)},
            )
        with unit_of_work(sessions) as session:
            if first_time(session, ProcessedEvent, group, uuid.UUID(str(envelope.event_id))):
                session.execute(
                    text(f"INSERT INTO {effects_table} (event_id) VALUES (:e)"),
                    {"e": str(envelope.event_id)},
                )
        if mode == "kill-after-handle":
            # The DB transaction is committed; the offset is not. Die the hard way.
            os.kill(os.getpid(), signal.SIGKILL)
        stop.set()

    loop: ConsumerLoop = ConsumerLoop(
        KafkaBroker(bootstrap, KAFKA_PROFILE), group, [topic], handle, batch_size=1
    )
    loop.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
