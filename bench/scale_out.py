"""Scale-out: decisions/s of 1 and of 2 campaign_engine worker processes in one consumer group.

Each run takes a fresh migrated database (two active campaigns, customers with a purchase
history in Redis) and its own topic namespace, where the worker creates `offer.requests`
with `TENIN_TOPIC_PARTITIONS` (12) partitions. N `tenin worker campaign_engine` processes
start; a warm-up of requests is decided (every process has joined the group and loaded
the model); then the workers are paused (SIGSTOP), a backlog of requests from many
customers is produced, and the workers resume (SIGCONT): producing the backlog costs
this process CPU on the same two cores, which would otherwise be taken from the workers
while they drain it. The rate is read afterwards from the decision log's `decided_at`
between 10% and 90% of the backlog decided (no polling query loads PostgreSQL while they
drain). The anchor is the one-process run of the same bench: target 2 processes >= 1.7x
it (issue 12; docs/scaling.md says what to expect on more cores). Every run waits for the
outbox to be all sent. With `--relay process`, the workers run as with
TENIN_OUTBOX_RELAY=process and one `tenin relay campaign_engine` process publishes.

Run (after `eval "$(scripts/services up)"`):
    python bench/scale_out.py [--requests 6000] [--customers 5000] [--processes 1 2] [--quick]
        [--relay thread|process]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402

from bench.decision_latency import requests, setup  # noqa: E402
from bench.server_cpu import server_cpu_seconds, used_since  # noqa: E402
from services.campaign_engine.models import Decision, Outbox  # noqa: E402
from shared.bus import broker_from_settings  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.events import OFFER_REQUESTS, encode  # noqa: E402
from shared.secret_keys import fresh_secrets  # noqa: E402
from tests.support.databases import drop_database  # noqa: E402
from tests.support.kafka_tools import delete_namespace  # noqa: E402

WARMUP = 240  # 20 per partition


def _decided(engine: object) -> int:
    with engine.sessions() as session:  # type: ignore[attr-defined]  # the campaign Engine
        return int(session.execute(select(func.count()).select_from(Decision)).scalar_one())


def _wait_for(engine: object, count: int, limit_s: float) -> None:
    """Poll the decision log (every 0.25 s: a light load) until `count` decisions."""
    deadline = time.monotonic() + limit_s
    n = 0
    while time.monotonic() < deadline:
        n = _decided(engine)
        if n >= count:
            return
        time.sleep(0.25)
    raise RuntimeError(f"only {n} of {count} decisions within {limit_s:.0f} s")


def _rate_between(engine: object, low: int, high: int) -> float:
    """Decisions/s between the low-th and the high-th decision, by their `decided_at`."""
    with engine.sessions() as session:  # type: ignore[attr-defined]  # the campaign Engine
        times = session.scalars(select(Decision.decided_at).order_by(Decision.decided_at)).all()
    return (high - low) / (times[high - 1] - times[low - 1]).total_seconds()


def _process_seconds(pid: int) -> float:
    """CPU seconds (user + system) of one process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_for_unsent(engine: object, timeout_s: float) -> None:
    """Until every outbox row is sent (the relay has published every decision)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with engine.sessions() as session:  # type: ignore[attr-defined]  # the campaign Engine
            if not session.scalar(select(func.count()).where(Outbox.sent_at.is_(None))):
                return
        time.sleep(0.05)
    raise RuntimeError("the outbox relay did not publish every decision in time")


def run(
    settings: Settings, processes: int, n: int, customers: int, seed: int, relay: str = "thread"
) -> tuple[float, float, float]:
    """Decisions/s of `processes` worker processes draining a backlog of `n` requests, and
    the CPU ms per decision of the workers (with the relay process, for `relay` "process")
    and of the servers while they drained it."""
    url, engine, people = setup(settings, customers, seed)
    namespace = f"scale.{uuid.uuid4().hex[:8]}."
    env = {
        **os.environ,
        **fresh_secrets(),
        "DATABASE_URL": url,
        "TENIN_TOPIC_NAMESPACE": namespace,
        "TENIN_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "TENIN_LOG_LEVEL": "WARNING",
        "TENIN_SECRET_KEY": settings.secret_key,
        "TENIN_OUTBOX_RELAY": relay,
    }
    commands = ["worker"] * processes + (["relay"] if relay == "process" else [])
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tenin.cli", command, "campaign_engine"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for command in commands
    ]
    broker = broker_from_settings(replace(settings, topic_namespace=namespace))
    producer = broker.producer()
    try:
        broker.ensure_topics([OFFER_REQUESTS])
        for envelope in requests(WARMUP, people, seed + 500):
            producer.send(OFFER_REQUESTS, envelope.key, encode(envelope))
        producer.flush(timeout=60)
        _wait_for(engine, WARMUP, 300)
        time.sleep(2.0)  # a late joiner's rebalance settles
        base = _decided(engine)
        backlog = [(e.key, encode(e)) for e in requests(n, people, seed)]
        for w in workers:  # paused while the backlog is produced (heartbeats resume in time)
            w.send_signal(signal.SIGSTOP)
        try:
            for key, body in backlog:
                producer.send(OFFER_REQUESTS, key, body)
            producer.flush(timeout=120)
            workers0 = sum(_process_seconds(w.pid) for w in workers)
            servers0 = server_cpu_seconds()
        finally:
            for w in workers:
                w.send_signal(signal.SIGCONT)
        _wait_for(engine, base + n, 600)
        _wait_for_unsent(engine, 60)  # the relay kept up: every decision is on its way
        worker_ms = (sum(_process_seconds(w.pid) for w in workers) - workers0) * 1000 / n
        server_ms = sum(used_since(servers0).values()) * 1000 / n
        rate = _rate_between(engine, base + n // 10, base + n * 9 // 10)
        return rate, worker_ms, server_ms
    finally:
        producer.close()
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
        engine.db.dispose()
        drop_database(str(settings.database_url), url)
        # 12 partitions a topic: a broker keeping every run's would slow down (and, at
        # ~13,000 partitions, run out of heap).
        delete_namespace(str(settings.kafka_bootstrap_servers), namespace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 run of 2,000 requests each")
    parser.add_argument(
        "--relay",
        choices=["thread", "process"],
        default="thread",
        help="where the outbox relay runs (TENIN_OUTBOX_RELAY; process: one relay process)",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.requests = 1, 2000
    missing = [
        v for v in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS") if not os.environ.get(v)
    ]
    if missing:
        sys.exit(f'set {", ".join(missing)}: eval "$(scripts/services up)"')
    from shared.logging import configure_logging

    configure_logging("bench", "WARNING", json_output=False)
    settings = Settings.from_env(service="campaign_engine")
    rates: dict[int, list[float]] = {p: [] for p in args.processes}
    cores = os.cpu_count() or 1
    for i in range(args.runs):
        for p in args.processes:
            rate, worker_ms, server_ms = run(
                settings, p, args.requests, args.customers, seed=i, relay=args.relay
            )
            rates[p].append(rate)
            print(
                f"run {i + 1}: {p} worker process(es): {rate:,.0f} decisions/s; CPU ms per "
                f"decision: workers{' and relay' if args.relay == 'process' else ''} "
                f"{worker_ms:.2f}, servers {server_ms:.2f} (PostgreSQL, "
                f"Redis, Kafka), so {cores} cores carry at most "
                f"{cores * 1000 / (worker_ms + server_ms):,.0f} decisions/s",
                flush=True,
            )
    anchor = statistics.median(rates[args.processes[0]])
    print(
        f"{settings.topic_partitions} partitions, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs; medians of {args.runs} run(s):"
    )
    for p in args.processes:
        median = statistics.median(rates[p])
        print(
            f"  {p} process(es): {median:,.0f} decisions/s = {median / anchor:.2f}x "
            f"{args.processes[0]} process(es)" + ("  (target >= 1.7x)" if p == 2 else "")
        )


if __name__ == "__main__":
    main()
