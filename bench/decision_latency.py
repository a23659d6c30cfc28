"""Decision latency inside the campaign_engine worker, and decisions per second per process.

Latency is measured per offer request from the moment the consumer loop starts decoding
it (right after the poll) to the commit of its decision and outbox row, on real
PostgreSQL, Redis and Kafka, with the shipped ONNX model scoring every candidate. The
worker process runs what `tenin worker campaign_engine` runs: the decision loop, the
update loop and the outbox relay (publishing every offer.decided to Kafka meanwhile).

Run (after `eval "$(scripts/services up)"`):
    python bench/decision_latency.py [--requests 3000] [--customers 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.campaign_engine.bootstrap import Engine, bootstrap  # noqa: E402
from services.campaign_engine.campaigns.commands import change_status, create_campaign  # noqa: E402
from services.campaign_engine.campaigns.schemas import CampaignIn  # noqa: E402
from services.campaign_engine.worker import components  # noqa: E402
from shared.bus import KAFKA_PROFILE, KafkaBroker, Message  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.consumer import ConsumerLoop, decode_envelope  # noqa: E402
from shared.db import unit_of_work, utcnow  # noqa: E402
from shared.events import Envelope, encode, make_event  # noqa: E402
from shared.runtime import run_components  # noqa: E402
from tests.support.databases import create_database, drop_database, migrate  # noqa: E402

OFFERS = [
    ("50 yen off onigiri", "amount", 50, ["onigiri"], 0),
    ("10% off bento", "percent", 10, ["bento"], 500),
    ("free coffee with a sandwich", "free_item", 150, ["coffee"], 400),
    ("30 yen off sweets", "amount", 30, ["sweets"], 0),
]
INTENTS = ["hungry", "thirsty", "craving_sweet", "coffee", "deal_seeking", "greeting"]


def campaign(now: datetime, holdout: float) -> CampaignIn:
    return CampaignIn.model_validate(
        {
            "name": f"bench {uuid.uuid4().hex[:6]}",
            "starts_at": (now - timedelta(days=1)).isoformat(),
            "ends_at": (now + timedelta(days=30)).isoformat(),
            "offers": [
                {
                    "title": t,
                    "discount": {"type": k, "value": v},
                    "applies_to": {"categories": c},
                    "min_basket": m,
                    "valid_hours": 72,
                }
                for t, k, v, c, m in OFFERS
            ],
            "budget": {"max_coupons": 10_000_000, "max_discount_total": 10_000_000_000},
            "caps": {"per_customer_per_day": 3, "per_customer_total": None},
            "holdout_pct": holdout,
            "revenue_share": {"pct": 5, "basis": "incremental"},
        }
    )


def requests(n: int, customers: list[str], seed: int) -> list[Envelope]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        c = rng.choice(customers)
        out.append(
            make_event(
                "offer.requested",
                {
                    "request_id": str(uuid.uuid4()),
                    "customer_id": c,
                    "context": {
                        "intent": rng.choice(INTENTS),
                        "sentiment": round(rng.uniform(-1, 1), 2),
                        "language": "ja",
                        "local_hour": rng.randrange(24),
                        "weekday": rng.randrange(7),
                    },
                },
                key=c,
                producer="bench",
            )
        )
    return out


def seed_features(engine: Engine, customers: list[str], seed: int) -> None:
    """Give customers a purchase history, so features (and scores) differ between them."""
    rng = random.Random(seed)
    now = utcnow()
    for c in customers:
        engine.features.record_follow(c, now - timedelta(days=rng.randrange(1, 300)))
        for _ in range(rng.randrange(0, 8)):
            engine.features.record_sale(
                c,
                rng.randrange(200, 1500),
                now - timedelta(hours=rng.randrange(1, 900)),
                [rng.choice(["onigiri", "bento", "coffee", "sweets", "drinks"])],
            )


def run_once(settings: Settings, n: int, customers: int, seed: int) -> dict[str, Any]:
    """One measured run in a fresh database; returns latencies (s) and the wall time."""
    server = str(settings.database_url)
    url = create_database(server, prefix="tenin_bench")
    migrate(url)
    stop = threading.Event()
    try:
        engine = bootstrap(replace(settings, database_url=url))
        broker = KafkaBroker(str(settings.kafka_bootstrap_servers), KAFKA_PROFILE)
        topic = f"bench.offer.requests.{uuid.uuid4().hex[:8]}"
        broker.ensure_topics([topic], partitions=3)
        with unit_of_work(engine.sessions) as session:
            for holdout in (10.0, 5.0):
                change_status(
                    session,
                    create_campaign(session, campaign(utcnow(), holdout)),
                    "activate",
                    utcnow(),
                )
        people = [f"c_bench_{uuid.uuid4().hex[:12]}" for _ in range(customers)]
        seed_features(engine, people, seed)
        producer = broker.producer()
        for envelope in requests(n, people, seed):
            producer.send(topic, envelope.key, encode(envelope))
        producer.flush(timeout=60)
        producer.close()

        started: dict[int, float] = {}
        latencies: list[float] = []
        arms: Counter[str] = Counter()
        marks: list[float] = []

        def timed_decoder(message: Message) -> tuple[Message, Envelope]:
            started[id(message)] = time.perf_counter()
            return message, decode_envelope(message)

        def timed_handler(item: tuple[Message, Envelope]) -> None:
            message, envelope = item
            decision = engine.decide(envelope)
            end = time.perf_counter()
            latencies.append(end - started.pop(id(message)))
            marks.append(end)
            arms[decision.arm if decision else "duplicate"] += 1
            if len(latencies) >= n:
                stop.set()

        parts = components(
            engine,
            broker,
            groups=(f"bench.d.{uuid.uuid4().hex[:8]}", f"bench.u.{uuid.uuid4().hex[:8]}"),
            request_topics=[topic],
            update_topics=[f"{topic}.updates"],
        )
        parts["decisions"] = ConsumerLoop(
            broker,
            f"bench.d.{uuid.uuid4().hex[:8]}",
            [topic],
            timed_handler,
            decoder=timed_decoder,
            batch_size=500,
        ).run
        broker.ensure_topics([f"{topic}.updates"])
        # The scorer loads before the clock starts, as it does in a worker's start-up.
        print(f"  model {engine.scorer.model_version}", file=sys.stderr)
        thread = threading.Thread(target=run_components, args=(parts, stop), daemon=True)
        cpu0, load0 = time.process_time(), os.getloadavg()[0]
        thread.start()
        thread.join(timeout=600)
        cpu, load = time.process_time() - cpu0, (load0 + os.getloadavg()[0]) / 2
        if len(latencies) < n:
            raise RuntimeError(f"only {len(latencies)} of {n} decisions within the time limit")
        return {
            "latencies": latencies,
            "seconds": marks[-1] - (marks[0] - latencies[0]),
            "arms": arms,
            "cpu_ms": cpu * 1000 / n,
            "load": load,
        }
    finally:
        stop.set()
        drop_database(server, url)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = Settings.from_env(service="campaign_engine")
    missing = [
        v for v in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS") if not os.environ.get(v)
    ]
    if missing:
        sys.exit(f'set {", ".join(missing)}: eval "$(scripts/services up)"')
    from shared.logging import configure_logging

    configure_logging("bench", "WARNING", json_output=False)
    results = []
    for i in range(args.runs):
        r = run_once(settings, args.requests, args.customers, seed=i)
        lat = [x * 1000 for x in r["latencies"]]
        rate = len(lat) / r["seconds"]
        results.append((statistics.median(lat), pct(lat, 0.99), rate))
        print(
            f"run {i + 1}: {len(lat)} decisions  p50 {statistics.median(lat):.2f} ms  "
            f"p90 {pct(lat, 0.90):.2f} ms  p99 {pct(lat, 0.99):.2f} ms  max {max(lat):.1f} ms  "
            f"{rate:,.0f} decisions/s  worker CPU {r['cpu_ms']:.1f} ms/decision  "
            f"load avg {r['load']:.1f} on {os.cpu_count()} CPUs  arms {dict(r['arms'])}"
        )
    p50s, p99s, rates = zip(*results, strict=True)
    print(
        f"median of {args.runs} runs: p50 {statistics.median(p50s):.2f} ms, "
        f"p99 {statistics.median(p99s):.2f} ms, {statistics.median(rates):,.0f} decisions/s "
        f"per worker process (one decision loop)"
    )


if __name__ == "__main__":
    main()
