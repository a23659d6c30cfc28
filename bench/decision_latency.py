"""Decision throughput and latency of a campaign_engine worker process, next to the batched
bare anchor measured in the same run (bench/decision_anchor.py).

The worker side runs what `tenin worker campaign_engine` runs, its own components
(services/campaign_engine/worker.components): the batched decision loop, which writes each
full poll on its writer thread while it decides the next (shared/consumer_pipelined.py),
the update loop and the outbox relay, on real PostgreSQL, Redis and Kafka, with the shipped
ONNX model scoring every candidate; a backlog of offer requests is drained from Kafka.
Latency is per request, from the moment the loop decodes it (right after the poll) to the
commit of its decision (the end of the poll's write). The anchor does the same
decisions with no framework, as many per transaction as the worker's polls hold
(worker.DECISION_LOOP), from requests already in memory, on as many threads as the worker
has decision loops (TENIN_DECISION_THREADS, 1).
Targets (issue 12): >= 2,000 decisions/s per worker process, >= 25% of the anchor, p99 <= 100 ms.

With `--relay process` the worker runs as with TENIN_OUTBOX_RELAY=process: no relay and no
eager publishing in it, and a `tenin relay campaign_engine` process publishes every
offer.decided (docs/scaling.md § Relay processes). The bench then also reports that
process's CPU per decision and how long after the last commit the outbox was all sent.

Run (after `eval "$(scripts/services up)"`):
    python bench/decision_latency.py [--requests 4000] [--customers 1000] [--runs 3] [--quick]
        [--relay thread|process]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402

from bench.chat_stack import tree_cpu_seconds, worker_process  # noqa: E402
from bench.decision_anchor import BareDecider  # noqa: E402
from bench.server_cpu import server_cpu_seconds, used_since  # noqa: E402
from services.campaign_engine.bootstrap import Engine, bootstrap  # noqa: E402
from services.campaign_engine.campaigns.commands import change_status, create_campaign  # noqa: E402
from services.campaign_engine.campaigns.schemas import CampaignIn  # noqa: E402
from services.campaign_engine.handlers import decision_batches  # noqa: E402
from services.campaign_engine.models import Campaign, Outbox  # noqa: E402
from services.campaign_engine.worker import (  # noqa: E402
    DECISION_LOOP,
    components,
    prepare,
)  # noqa: E402
from shared.bus import KAFKA_PROFILE, KafkaBroker, Message  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.consumer import decode_envelope  # noqa: E402
from shared.db import unit_of_work, utcnow  # noqa: E402
from shared.events import Envelope, encode, make_event  # noqa: E402
from shared.runtime import run_components  # noqa: E402
from shared.secret_keys import fresh_secrets  # noqa: E402
from tests.support.databases import create_database, drop_database, migrate  # noqa: E402
from tests.support.kafka_tools import delete_topics  # noqa: E402

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


def setup(settings: Settings, customers: int, seed: int) -> tuple[str, Engine, list[str]]:
    """A fresh migrated database with two active campaigns, customers with a history."""
    url = create_database(str(settings.database_url), prefix="tenin_bench")
    migrate(url)
    engine = bootstrap(replace(settings, database_url=url), pre_ping=False)
    with unit_of_work(engine.sessions) as session:
        for holdout in (10.0, 5.0):
            change_status(
                session, create_campaign(session, campaign(utcnow(), holdout)), "activate", utcnow()
            )
    people = [f"c_bench_{uuid.uuid4().hex[:12]}" for _ in range(customers)]
    seed_features(engine, people, seed)
    return url, engine, people


def run_worker(engine: Engine, settings: Settings, envelopes: list[Envelope]) -> dict[str, Any]:
    """Drain a backlog of requests through the worker's components; latencies and wall time
    (and, with relay processes, theirs: the relay's CPU, and the publishing lag)."""
    if engine.settings.outbox_relay != "process":
        return drain(engine, settings, envelopes)
    env = {
        **fresh_secrets(),
        "DATABASE_URL": str(engine.settings.database_url),
        "TENIN_OUTBOX_RELAY": "process",
        "TENIN_LOG_LEVEL": "WARNING",
    }
    with worker_process("campaign_engine", env, command="relay") as relay:
        cpu0 = _started(relay.pid)
        worker = drain(engine, settings, envelopes)
        last_commit = time.perf_counter()
        while _unsent(engine) and time.perf_counter() - last_commit < 60:
            time.sleep(0.01)
        lag = time.perf_counter() - last_commit
        relay_ms = (tree_cpu_seconds(relay.pid) - cpu0) * 1000 / len(envelopes)
    return {**worker, "relay_cpu_ms": relay_ms, "publish_lag_s": lag}


def _started(pid: int, timeout_s: float = 30.0) -> float:
    """Once a process has started (its CPU time has stopped growing for half a second), its
    CPU seconds so far: what it used starting is not the run's."""
    deadline, last = time.monotonic() + timeout_s, -1.0
    while time.monotonic() < deadline:
        now = tree_cpu_seconds(pid)
        if now == last:
            return now
        last = now
        time.sleep(0.5)
    raise RuntimeError("the relay process did not settle after starting")


def _unsent(engine: Engine) -> int:
    with engine.sessions() as session:
        return int(session.scalar(select(func.count()).where(Outbox.sent_at.is_(None))) or 0)


def drain(engine: Engine, settings: Settings, envelopes: list[Envelope]) -> dict[str, Any]:
    """Drain a backlog of requests through the worker's components; latencies and wall time."""
    n = len(envelopes)
    stop = threading.Event()
    broker = KafkaBroker(str(settings.kafka_bootstrap_servers), KAFKA_PROFILE)
    topic = f"bench.offer.requests.{uuid.uuid4().hex[:8]}"
    # As many partitions as offer.requests has (TENIN_TOPIC_PARTITIONS), so the decision
    # loops share them evenly.
    broker.ensure_topics([topic, f"{topic}.updates"], partitions=engine.settings.topic_partitions)
    producer = broker.producer()
    for envelope in envelopes:
        producer.send(topic, envelope.key, encode(envelope))
    producer.flush(timeout=60)
    producer.close()

    started: dict[int, float] = {}
    latencies: list[float] = []
    marks: list[float] = []
    decide = decision_batches(engine)

    first_decoded: list[float] = []

    def timed_decoder(message: Message) -> Envelope:
        envelope = decode_envelope(message)
        started[id(envelope)] = now = time.perf_counter()
        if not first_decoded:
            first_decoded.append(now)
        return envelope

    def timed_handler(batch: list[Envelope]) -> Callable[[], object]:
        finish = decide(batch)

        def timed_finish() -> object:  # on the loop's writer thread, after a full poll
            written = finish()
            end = time.perf_counter()
            latencies.extend(end - started.pop(id(e)) for e in batch)
            marks.append(end)
            if len(latencies) >= n:
                stop.set()
            return written

        return timed_finish

    groups = (f"bench.d.{uuid.uuid4().hex[:8]}", f"bench.u.{uuid.uuid4().hex[:8]}")
    # The worker's own components, its decision loops as it runs them (publishing their
    # decisions eagerly), with the timing decoder and handler in them.
    parts = components(
        engine,
        broker,
        groups=groups,
        request_topics=[topic],
        update_topics=[f"{topic}.updates"],
        decide=timed_handler,
        decoder=timed_decoder,
    )
    print(
        f"  decision threads {engine.settings.decision_threads}, "
        f"batches of {DECISION_LOOP['batch_size']}",
        file=sys.stderr,
    )
    # As `tenin worker` starts: topics, the model, budgets reconciled with the database.
    prepare(engine, broker)
    print(f"  model {engine.scorer.model_version}", file=sys.stderr)
    thread = threading.Thread(target=run_components, args=(parts, stop), daemon=True)
    sampler = ThreadCpu()
    servers0 = server_cpu_seconds()
    cpu0 = time.process_time()
    thread.start()
    sampler.follow(thread)
    cpu = time.process_time() - cpu0
    servers = used_since(servers0)
    if len(latencies) < n:
        raise RuntimeError(f"only {len(latencies)} of {n} decisions within the time limit")
    delete_topics(str(settings.kafka_bootstrap_servers), [topic, f"{topic}.updates"])
    return {
        "latencies": latencies,
        "seconds": max(marks) - first_decoded[0],
        "cpu_ms": cpu * 1000 / n,
        "thread_cpu_ms": {k: v * 1000 / n for k, v in sampler.by_kind().items()},
        "server_cpu_ms": {k: v * 1000 / n for k, v in servers.items()},
    }


class ThreadCpu:
    """CPU seconds of this process's threads while a run lasts, by kind (decision loops,
    the relay, Kafka client threads, the rest), read from /proc (Linux)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], float] = {}
        self._base: dict[int, float] = {
            t.native_id: v
            for t in threading.enumerate()
            if t.native_id is not None and (v := _thread_seconds(t.native_id)) is not None
        }

    def follow(self, thread: threading.Thread, timeout: float = 600.0) -> None:
        """Sample every 0.2 s until `thread` ends (each thread's last reading counts)."""
        deadline = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < deadline:
            for t in threading.enumerate():
                if t.native_id is None or (v := _thread_seconds(t.native_id)) is None:
                    continue
                self._seen[(t.name, t.native_id)] = v - self._base.get(t.native_id, 0.0)
            thread.join(timeout=0.2)

    def by_kind(self) -> dict[str, float]:
        kinds: dict[str, float] = {}
        for (name, _), seconds in self._seen.items():
            if name == "MainThread":
                continue  # the bench itself (sampling)
            kind = (
                "their writers"  # the pipelined loop's writer threads (shared/consumer_pipelined.py)
                if name.startswith("decisions-writer")
                else "decision loops"
                if name.startswith("decisions")
                else "outbox relay"
                if name.startswith("outbox")
                else "kafka client"
                if name.startswith(("kafka", "tenin-network"))
                else "other"
            )
            kinds[kind] = kinds.get(kind, 0.0) + seconds
        return kinds


def _thread_seconds(tid: int) -> float | None:
    try:
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(settings: Settings, n: int, customers: int, seed: int) -> dict[str, Any]:
    """One measured run in a fresh database: the worker, then the anchor on the same data."""
    url, engine, people = setup(settings, customers, seed)
    try:
        worker = run_worker(engine, settings, requests(n, people, seed))
        with engine.sessions() as session:
            live = list(session.execute(select(Campaign)).scalars())
            for c in live:
                session.expunge(c)
        anchor_requests = [
            {**e.payload, "event_id": e.event_id} for e in requests(n, people, seed + 1000)
        ]
        anchor_latencies, anchor_seconds, anchor_cpu = run_anchor(
            url, settings, live, engine, anchor_requests, engine.settings.decision_threads
        )
        return {
            **worker,
            "anchor_latencies": anchor_latencies,
            "anchor_seconds": anchor_seconds,
            "anchor_cpu_ms": anchor_cpu,
        }
    finally:
        engine.db.dispose()
        drop_database(str(settings.database_url), url)


def run_anchor(
    url: str,
    settings: Settings,
    live: list[Campaign],
    engine: Engine,
    anchor_requests: list[dict[str, Any]],
    threads: int,
) -> tuple[list[float], float, float]:
    """The bare anchor with as many threads as the worker has decision loops (each its own
    connections, every thread taking every `threads`-th chunk of the worker's batch size):
    latencies, wall seconds and CPU ms per decision."""
    deciders = [
        BareDecider(url, str(settings.redis_url), settings.model_dir, live, engine.coupon_key)
        for _ in range(threads)
    ]
    size = DECISION_LOOP["batch_size"]
    chunks = [anchor_requests[at : at + size] for at in range(0, len(anchor_requests), size)]
    shares = [[r for chunk in chunks[k::threads] for r in chunk] for k in range(threads)]
    results: list[tuple[list[float], float]] = [([], 0.0)] * threads

    def one(k: int) -> None:
        results[k] = deciders[k].run(shares[k], chunk=size)

    cpu0 = time.process_time()
    try:
        workers = [threading.Thread(target=one, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        for d in deciders:
            d.close()
    cpu = (time.process_time() - cpu0) * 1000 / len(anchor_requests)
    latencies = [x for lat, _ in results for x in lat]
    return latencies, max(seconds for _, seconds in results), cpu


def isolated_run(settings: Settings, n: int, customers: int, seed: int) -> dict[str, Any]:
    """run_once in a child process (multiprocessing spawn), with the bench's logging."""
    from shared.logging import configure_logging

    configure_logging("bench", "WARNING", json_output=False)
    return run_once(settings, n, customers, seed)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 run of 1,500 requests")
    parser.add_argument(
        "--relay",
        choices=["thread", "process"],
        default="thread",
        help="where the outbox relay runs (TENIN_OUTBOX_RELAY)",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.requests = 1, 1500
    settings = replace(Settings.from_env(service="campaign_engine"), outbox_relay=args.relay)
    missing = [
        v for v in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS") if not os.environ.get(v)
    ]
    if missing:
        sys.exit(f'set {", ".join(missing)}: eval "$(scripts/services up)"')
    rows = []
    for i in range(args.runs):
        # Each run in a fresh process, as a worker is: a run must not inherit the last
        # one's threads, objects and connections (measured: ~30% more CPU per decision in
        # the second and third runs of one process).
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            r = pool.apply(isolated_run, (settings, args.requests, args.customers, i))
        lat = [x * 1000 for x in r["latencies"]]
        bare = [x * 1000 for x in r["anchor_latencies"]]
        rate, anchor = len(lat) / r["seconds"], len(bare) / r["anchor_seconds"]
        rows.append((rate, anchor, statistics.median(lat), pct(lat, 0.99)))
        split = ", ".join(f"{k} {v:.3f}" for k, v in sorted(r["thread_cpu_ms"].items()))
        print(f"  CPU ms per decision by thread: {split}")
        if "relay_cpu_ms" in r:
            print(
                f"  relay process: CPU {r['relay_cpu_ms']:.3f} ms per decision; the outbox was "
                f"all sent {r['publish_lag_s'] * 1000:.0f} ms after the last commit"
            )
        served = ", ".join(f"{k} {v:.3f}" for k, v in sorted(r["server_cpu_ms"].items()))
        whole = r["cpu_ms"] + r.get("relay_cpu_ms", 0.0) + sum(r["server_cpu_ms"].values())
        cores = os.cpu_count() or 1
        print(
            f"  CPU ms per decision by server: {served}; worker + servers {whole:.2f} ms, so "
            f"this machine's {cores} cores carry at most {cores * 1000 / whole:,.0f} "
            "decisions/s however many worker processes run"
        )
        print(
            f"run {i + 1}: worker {rate:,.0f} decisions/s  p50 {statistics.median(lat):.1f} ms  "
            f"p99 {pct(lat, 0.99):.1f} ms  CPU {r['cpu_ms']:.2f} ms/decision | anchor "
            f"{anchor:,.0f} decisions/s  p99 {pct(bare, 0.99):.1f} ms  CPU "
            f"{r['anchor_cpu_ms']:.2f} ms/decision | ratio {rate / anchor:.1%}  "
            f"(load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
        )
    rates, anchors, p50s, p99s = (statistics.median(c) for c in zip(*rows, strict=True))
    print(
        f"median of {args.runs} runs: worker {rates:,.0f} decisions/s per process "
        f"(target >= 2,000), p50 {p50s:.1f} ms, p99 {p99s:.1f} ms (target <= 100); "
        f"anchor {anchors:,.0f} decisions/s; ratio {rates / anchors:.1%} (target >= 25%)"
    )


if __name__ == "__main__":
    main()
