"""On PostgreSQL the relay is woken by NOTIFY from another process (docs/architecture.md § Hot paths).

The writer is a separate process, so the in-process signal cannot be what wakes the relay;
the relay's fallback poll is 60 s, so polling cannot either.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from services.campaign_engine.models import Outbox
from shared.bus import InMemoryBroker
from shared.db import make_engine, make_session_factory
from shared.events import decode
from shared.outbox_relay import OutboxRelay

REPO = Path(__file__).resolve().parents[3]
FALLBACK_POLL_S = 60.0

WRITER = """
import sys, time
from services.campaign_engine.models import Outbox
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.outbox import add_event
sessions = make_session_factory(make_engine(sys.argv[1], pool_size=1))
for i in range(int(sys.argv[3])):
    with unit_of_work(sessions) as s:
        e = add_event(s, Outbox, "customer.opted_in", {"customer_id": f"c_{i}"}, key=f"c_{i}",
                      producer="writer", topic=sys.argv[2])
    print(e.event_id, time.time(), flush=True)
    time.sleep(0.3)
"""


def test_a_commit_in_another_process_wakes_the_relay_by_notify(pg_url: str) -> None:
    topic = f"notify.{uuid.uuid4().hex[:8]}"
    broker = InMemoryBroker()
    arrived: dict[str, float] = {}

    class Clocked:
        def send(self, topic_: str, key: str | None, value: bytes, headers=()) -> None:  # type: ignore[no-untyped-def]
            broker.producer().send(topic_, key, value, headers)
            arrived[str(decode(value).event_id)] = time.time()

        def flush(self, timeout: float | None = None) -> None:
            return None

        def close(self) -> None:
            return None

    sessions = make_session_factory(make_engine(pg_url, pre_ping=False))
    relay = OutboxRelay(sessions, Outbox, Clocked(), poll_seconds=FALLBACK_POLL_S)
    while relay.relay_once():  # rows other tests left behind
        pass
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        out = subprocess.run(
            [sys.executable, "-c", WRITER, pg_url, topic, "4"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        committed = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()}
        deadline = time.time() + 10
        while time.time() < deadline and not set(committed) <= set(arrived):
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert set(committed) <= set(arrived), "every committed row was published"
    delays = [arrived[e] - committed[e] for e in committed]
    print("publish delays after commit (s):", [round(d, 4) for d in delays])
    assert max(delays) < 1.0, (
        f"published {delays} s after commit; fallback poll {FALLBACK_POLL_S} s"
    )
