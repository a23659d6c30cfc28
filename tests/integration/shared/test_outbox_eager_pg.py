"""On PostgreSQL, handlers publishing their own rows (shared/outbox_eager.py) and relays
claiming the same table at the same time publish every row exactly once.

Four writer threads commit through `publishing_eagerly` (their relay is this process's);
a second relay, standing for another worker process of the service (its own lock), claims
the same table all the while with a 1 ms poll, and this process's relay runs too. SKIP
LOCKED and the in-process claim lock are all that keep them apart.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter

from sqlalchemy import func, select

from services.chat_agent.models import Outbox
from shared.bus import InMemoryBroker
from shared.db import make_engine, make_session_factory, unit_of_work
from shared.events import decode
from shared.outbox_eager import publishing_eagerly
from shared.outbox_relay import OutboxRelay
from tests.unit.shared.test_outbox_eager import add_opted_in

WRITERS, EACH = 4, 40


def test_eager_handlers_and_two_relays_publish_each_row_once(pg_url: str) -> None:
    topic = f"eager.{uuid.uuid4().hex[:8]}"
    broker = InMemoryBroker()
    sessions = make_session_factory(make_engine(pg_url, pre_ping=False, pool_size=8))
    here = OutboxRelay(sessions, Outbox, broker.producer(), poll_seconds=0.05)
    elsewhere = OutboxRelay(sessions, Outbox, broker.producer(), poll_seconds=0.001)
    while here.relay_once():  # rows other tests left behind
        pass
    stop = threading.Event()
    relays = [threading.Thread(target=r.run, args=(stop,), daemon=True) for r in (here, elsewhere)]
    written: list[str] = []

    def write(customer_id: str) -> None:
        with unit_of_work(sessions) as session:
            envelope = add_opted_in(session, topic, customer_id)
        written.append(str(envelope.event_id))

    handle = publishing_eagerly(write, here)

    def writer(n: int) -> None:
        for i in range(EACH):
            handle(f"c_{n}_{i}")

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in relays + writers:
        t.start()
    for t in writers:
        t.join(timeout=60)
    stop.set()
    for t in relays:
        t.join(timeout=10)

    published = Counter(str(decode(m.value).event_id) for m in broker.messages(topic))
    assert len(written) == WRITERS * EACH
    assert set(published) == set(written), "every committed row was published"
    assert max(published.values()) == 1, "and none twice"
    with sessions() as session:
        unsent = session.scalar(
            select(func.count()).where(Outbox.topic == topic, Outbox.sent_at.is_(None))
        )
    assert unsent == 0
