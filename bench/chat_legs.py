"""Where the webhook -> coupon time goes: the legs of each round, from the stamps the path
leaves in PostgreSQL (bench/chat_e2e_latency.py prints them after its figures).

Every stamp is this machine's wall clock, taken by the process that did the work:

- `started`: the bench sends the signed webhook;
- chat_agent `processed_events.processed_at` of the webhook event: the inbound handler's
  first statement (after its Redis reads and BEGIN);
- chat_agent outbox `offer.requested`: `created_at` is when the inbound handler wrote the
  event, inside its transaction (`add_event` writes at once; before this round the ORM
  wrote it at the commit's flush, so the two legs around it split differently: compare
  their sum), `sent_at` the relay's mark after the broker's ack;
- campaign_engine `decisions.decided_at` (the clock of the decision batch, read as it
  starts) and its outbox `offer.decided` `sent_at` (the relay's mark after the ack);
- chat_agent `deliveries.created_at`: the clock of the offers handler, read as it starts
  (so the hop before it can read a little below zero: the consumer may hold the record
  before the relay's flush has returned);
- `delivered`: the recording LINE server received the reply.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

LEGS = (
    ("webhook, hop 1, handler start", "started", "inbound_at"),
    ("inbound tx -> offer.requested", "inbound_at", "requested_at"),
    ("chat commit, relay -> acked", "requested_at", "requested_sent"),
    ("hop 2 -> engine batch start", "requested_sent", "decided_at"),
    ("engine decide+commit+relay", "decided_at", "decided_sent"),
    ("hop 3 -> chat handler start", "decided_sent", "queued_at"),
    ("offers tx, delivery, LINE", "queued_at", "delivered"),
)

_STAMPS = """
SELECT r.customer_id,
       extract(epoch FROM co.created_at), extract(epoch FROM co.sent_at),
       extract(epoch FROM d.decided_at), extract(epoch FROM eo.sent_at),
       extract(epoch FROM q.created_at)
FROM chat_agent.offer_requests r
JOIN chat_agent.outbox co
  ON co.topic = 'offer.requests' AND co.body::json -> 'payload' ->> 'request_id' = r.request_id
JOIN campaign_engine.decisions d ON d.request_id = r.request_id
JOIN campaign_engine.outbox eo
  ON eo.topic = 'offer.decisions' AND eo.body::json -> 'payload' ->> 'request_id' = r.request_id
JOIN chat_agent.deliveries q ON q.request_id = r.request_id
"""


_INBOUND = """
SELECT event_id::text, extract(epoch FROM processed_at)
FROM chat_agent.processed_events WHERE consumer = 'chat_agent.inbound'
"""


def leg_table(database: str, rounds: Sequence[tuple[str, float, float, str]]) -> str:
    """Median and p95 ms per leg over `rounds` (customer_id, started, delivered, the id of
    the webhook event's envelope)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database)
    try:
        with engine.connect() as conn:
            rows = {row[0]: [float(v) for v in row[1:]] for row in conn.execute(text(_STAMPS))}
            inbound = {row[0]: float(row[1]) for row in conn.execute(text(_INBOUND))}
    finally:
        engine.dispose()
    names = ("requested_at", "requested_sent", "decided_at", "decided_sent", "queued_at")
    per_leg: dict[str, list[float]] = {label: [] for label, _, _ in LEGS}
    for customer_id, started, delivered, event_id in rounds:
        stamps = rows.get(customer_id)
        if stamps is None or event_id not in inbound:
            continue
        at = {
            "started": started,
            "delivered": delivered,
            "inbound_at": inbound[event_id],
            **dict(zip(names, stamps, strict=True)),
        }
        for label, start, end in LEGS:
            per_leg[label].append((at[end] - at[start]) * 1000)
    lines = [f"{'leg (engine decider)':<30} {'p50 ms':>8} {'p95 ms':>8}"]
    for label, ms in per_leg.items():
        if ms:
            p95 = sorted(ms)[max(0, round(0.95 * len(ms)) - 1)]
            lines.append(f"{label:<30} {statistics.median(ms):8.1f} {p95:8.1f}")
    return "\n".join(lines)
