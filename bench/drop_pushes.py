"""A drop's pushes on chat_agent's side alone, on real PostgreSQL and Redis (docs/interfaces.md
§ Campaign drops): the offers group's step (a poll of drop decisions → deliveries +
drop_pushes) and the delivery loop (claim → push through the recording LINE server →
record) as the worker wires it, each timed and its CPU per push measured in this process.

The anchor is the channel's rate (--line-rate, enforced by the recording server with 429s):
pushes/s is printed as a ratio of it (1.0 = limited only by the channel). Goal (issue 12):
pushes limited only by the rate.

Run: eval "$(scripts/services up)"; python bench/drop_pushes.py [--pushes 10000] [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Table, func, insert, select  # noqa: E402

from bench.fresh_db import on_fresh_databases, print_medians  # noqa: E402
from services.chat_agent.bootstrap import bootstrap  # noqa: E402
from services.chat_agent.delivery.curl import delivery_sender  # noqa: E402
from services.chat_agent.delivery.loop import DeliveryLoop  # noqa: E402
from services.chat_agent.delivery.rate import PushRate  # noqa: E402
from services.chat_agent.drops.pushes import deliver_drop_decisions  # noqa: E402
from services.chat_agent.drops.schedules import record_drop_queued  # noqa: E402
from services.chat_agent.models import Customer, Delivery  # noqa: E402
from services.chat_agent.worker import DELIVERY_BATCH, DELIVERY_SENDERS  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.db import utcnow  # noqa: E402
from shared.events import Envelope, make_event  # noqa: E402
from shared.secret_keys import fresh_secrets  # noqa: E402
from tenin.line_recorder import LineRecorder  # noqa: E402

POLL = 100  # offer.decided per poll of the offers group (the consumer's batch)


def _recorder(token: str, line_rate: float, pipe: Connection) -> None:
    """The recording LINE server in a process of its own (its CPU is not the bench's):
    sends its URL, waits for a word, sends back the push times, users and 429s."""
    with LineRecorder(token=token, push_rate_per_s=line_rate) as line:
        pipe.send(line.base_url)
        pipe.recv()
        pushes = [(d.at, d.to) for d in line.delivered if d.channel == "push"]
        pipe.send((pushes, line.rate_limited))


@contextmanager
def recorder_process(token: str, line_rate: float) -> Iterator[tuple[str, Connection]]:
    """(base URL, pipe) of a recording server in a child process; stopped afterwards."""
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    child = multiprocessing.get_context("fork").Process(
        target=_recorder, args=(token, line_rate, theirs), daemon=True
    )
    child.start()
    try:
        yield ours.recv(), ours
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()


def _decided(drop_id: str, customer_id: str, serial: int) -> Envelope:
    now = datetime.now(UTC)
    payload = {
        "request_id": str(uuid.uuid5(uuid.UUID(drop_id), customer_id)),
        "customer_id": customer_id,
        "campaign_id": "cmp-1",
        "offer_id": "off-1",
        "arm": "treatment",
        "coupon": {
            "code": f"TN-{serial:012d}",
            "title": "Tuna-mayo onigiri",
            "discount": {"type": "amount", "value": 50},
            "valid_from": now.isoformat(),
            "expires_at": (now + timedelta(hours=24)).isoformat(),
            "min_basket": 0,
        },
        "propensity": 1.0,
        "score": 0.2,
        "model_version": "bench",
        "reason": None,
        "drop_id": drop_id,
    }
    return make_event("offer.decided", payload, key=customer_id, producer="campaign_engine")


def run_pushes(url: str, redis_url: str | None, pushes: int, line_rate: float) -> dict[str, float]:
    """Queue `pushes` drop coupons a poll at a time, then push them all; returns figures."""
    secrets = fresh_secrets()
    with recorder_process(secrets["LINE_CHANNEL_ACCESS_TOKEN"], line_rate) as (base, line):
        env = {"DATABASE_URL": url, "MESSAGING_API_BASE": base, **secrets,
               "PUBLIC_BASE_URL": "http://tenin.test", "LINE_PUSH_RATE_PER_S": str(line_rate),
               "TENIN_TOPIC_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}.",
               **({"REDIS_URL": redis_url} if redis_url else {})}  # fmt: skip
        deps = bootstrap(Settings.from_env(env, service="chat_agent"))
        now = utcnow()
        customers = [f"c_{uuid.uuid4().hex[:16]}" for _ in range(pushes)]
        rows = [
            {"customer_id": c, "line_user_id": f"U{uuid.uuid4().hex}", "language": "ja",
             "followed": True, "follow_changed_ms": 0, "opted_out": False,
             "consent_changed_ms": 0, "last_event_ms": 0, "created_at": now, "updated_at": now}
            for c in customers
        ]  # fmt: skip
        with deps.engine.begin() as conn:
            conn.execute(insert(cast(Table, Customer.__table__)), rows)
        drop_id = str(uuid.uuid4())
        queued = {"drop_id": drop_id, "campaign_id": "cmp-1", "quiet_hours": None}
        record_drop_queued(
            make_event("drop.queued", queued, key="cmp-1", producer="campaign_engine"),
            sessions=deps.sessions,
            clock=utcnow,
        )
        decisions = [_decided(drop_id, c, i) for i, c in enumerate(customers)]
        persona = deps.persona()
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(0, pushes, POLL):
            deliver_drop_decisions(
                decisions[i : i + POLL],
                sessions=deps.sessions,
                persona=persona,
                public_base_url="http://tenin.test",
                clock=utcnow,
                kick=lambda: None,
            )
        queue_cpu, queue_wall = time.process_time() - cpu, time.perf_counter() - wall
        loop = DeliveryLoop(
            deps.sessions,
            None,
            sender=delivery_sender(deps.settings, DELIVERY_SENDERS),
            push_rate=PushRate(deps.limiter, line_rate),
            batch_size=DELIVERY_BATCH,
        )
        stop = threading.Event()
        thread = threading.Thread(target=loop.run, args=(stop,))
        cpu, wall = time.process_time(), time.perf_counter()
        thread.start()
        while _sent(deps) < pushes and time.perf_counter() - wall < 600:
            time.sleep(0.2)
        push_cpu, push_wall = time.process_time() - cpu, time.perf_counter() - wall
        stop.set()
        thread.join()
        line.send("report")
        delivered, rate_limited = line.recv()
        times = sorted(at for at, _ in delivered)
        users = {to for _, to in delivered}
        deps.engine.dispose()
        return {
            "pushes": pushes,
            "queue_per_s": pushes / queue_wall,
            "queue_cpu_us_per_push": queue_cpu / pushes * 1e6,
            "pushes_per_s": (len(times) - 1) / (times[-1] - times[0]),
            "push_cpu_us_per_push": push_cpu / pushes * 1e6,
            "push_wall_s": push_wall,
            "rate_limited": rate_limited,
            "duplicates": len(times) - len(users),
        }


def _sent(deps: Any) -> int:
    with deps.sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
            )
            or 0
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="3,000 pushes, one run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--line-rate", type=float, default=2000.0)
    args = parser.parse_args()
    pushes, runs = (3_000, 1) if args.quick else (args.pushes, args.runs)
    results = on_fresh_databases(
        "tenin_pushes",
        runs,
        lambda url: run_pushes(url, os.environ.get("REDIS_URL"), pushes, args.line_rate),
    )
    print(f"drop pushes, {pushes:,} coupons, channel limited at {args.line_rate:,.0f}/s")
    print_medians(results)
    rate = statistics.median(r["pushes_per_s"] for r in results)
    print(f"  pushes/s (median): {rate:,.0f} = {rate / args.line_rate:.2f} x the channel's rate")


if __name__ == "__main__":
    main()
