"""POS ingest benchmark: transactions per second per process, and latency per request.

Drives the real HTTP app in this one process (Flask test client: JSON parsing, API-key
check, validation, the database transaction and the JSON answer are all included) on
real PostgreSQL. Batches of 1,000 transactions, 10% of them presenting a fresh, valid
coupon (which is redeemed: claim, budget counter, ledger entry, outbox event); 30% carry
a loyalty member id, half of those linked (a `sale.recorded` event each). Then the same
for one-transaction requests.

    eval "$(scripts/services up)"
    .venv/bin/python bench/pos_ingest.py            # a scratch database, dropped after
    .venv/bin/python bench/pos_ingest.py --batches 50 --singles 2000 --threads 1 4
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker, bootstrap, tune_gc
from services.redemption_tracker.copies import link_customer
from services.redemption_tracker.handlers import handle_event
from shared.auth import create_key, install_rate_limits
from shared.config import Settings
from shared.coupons import CouponClaims, issue_code, round_up_to_hour
from shared.crypto import member_hash
from shared.db import unit_of_work
from shared.events import make_event
from shared.ratelimit import Limits, rate_limiter

REPO_ROOT = Path(__file__).resolve().parents[1]


def create_database(server_url: str) -> str:
    """A scratch database next to DATABASE_URL's."""
    name = f"tenin_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, url: str) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def migrate(url: str) -> None:
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Workload:
    def __init__(self, tracker: Tracker, coupon_share: float, member_share: float) -> None:
        self.tracker = tracker
        self.rng = random.Random(7)
        self.coupon_share, self.member_share = coupon_share, member_share
        self.number = self.rng.randrange(1, 2**19)
        self.serial = 0
        self.expires = round_up_to_hour(datetime.now(UTC) + timedelta(days=2))
        campaign_id = f"bench-{uuid.uuid4().hex[:8]}"
        start = datetime.now(UTC) - timedelta(days=1)
        handle_event(
            tracker,
            "bench",
            make_event(
                "campaign.activated",
                {
                    "campaign_id": campaign_id,
                    "campaign": {
                        "campaign_id": campaign_id,
                        "number": self.number,
                        "name": "bench",
                        "status": "active",
                        "starts_at": start,
                        "ends_at": start + timedelta(days=30),
                        "offers": [
                            {
                                "offer_id": "o1",
                                "index": 0,
                                "title": "100 yen off",
                                "discount": {"type": "amount", "value": 100},
                                "applies_to": {},
                                "min_basket": 300,
                                "valid_hours": 72,
                            }
                        ],
                        "budget": {"max_redemptions": 10_000_000},
                        "caps": {},
                        "holdout_pct": 10.0,
                        "revenue_share": {"pct": 5, "basis": "attributed"},
                        "per_call_fee": 1,
                    },
                },
                key=campaign_id,
                producer="bench",
            ),
        )
        self.members = [f"M{uuid.uuid4().hex[:10]}" for _ in range(5000)]
        with unit_of_work(tracker.sessions) as s:  # half of the members are linked
            for m in self.members[::2]:
                link_customer(
                    s,
                    make_event(
                        "customer.linked",
                        {
                            "customer_id": "c_" + uuid.uuid4().hex[:16],
                            "member_hash": member_hash(tracker.secret, m),
                        },
                        key="c",
                        producer="bench",
                    ),
                )

    def transaction(self) -> dict[str, Any]:
        qty = self.rng.randint(1, 4)
        price = self.rng.choice((120, 150, 180, 230, 480))
        body: dict[str, Any] = {
            "transaction_id": uuid.uuid4().hex,
            "occurred_at": datetime.now(UTC).isoformat(),
            "currency": "JPY",
            "total": qty * price + 200,
            "items": [
                {"sku": "4901234567890", "category": "onigiri", "qty": qty, "unit_price": price},
                {"sku": "4909876543210", "category": "drinks", "qty": 1, "unit_price": 200},
            ],
        }
        if self.rng.random() < self.member_share:
            body["member_id"] = self.rng.choice(self.members)
        if self.rng.random() < self.coupon_share:
            self.serial += 1
            body["coupon_codes"] = [
                issue_code(
                    self.tracker.coupon_key, CouponClaims(self.number, 0, self.serial, self.expires)
                )
            ]
        return body


ANCHOR_TABLES = ("transactions", "coupon_checks", "redemptions", "ledger_entries", "outbox")


def raw_copy_seconds(tracker: Tracker, batches: int) -> float:
    """Seconds per batch to COPY, with psycopg and no framework, the rows the ingest wrote.

    The rows are read back from the tracker's tables (every row the `batches` batches
    left, so the very same values) and copied, one transaction per batch's share, into
    tables made `LIKE … INCLUDING ALL` (same columns, defaults, indexes and unique
    constraints; no foreign keys). The median of three passes.
    """
    raw = tracker.engine.raw_connection()
    try:
        conn: Any = raw.driver_connection
        tables = {}
        with conn.cursor() as cur:
            from psycopg.types.string import TextLoader

            for json_type in ("json", "jsonb"):  # JSON stays text, as the ingest sent it
                cur.adapters.register_loader(json_type, TextLoader)
            cur.execute("CREATE SCHEMA IF NOT EXISTS anchor")
            for name in ANCHOR_TABLES:
                cur.execute(f"SELECT * FROM redemption_tracker.{name} ORDER BY id")
                rows = cur.fetchall()
                columns = [d.name for d in cur.description or ()]
                size = -(-len(rows) // batches) if rows else 1
                tables[name] = (columns, [rows[i : i + size] for i in range(0, len(rows), size)])
        conn.commit()
        passes = []
        for _pass in range(3):
            with conn.cursor() as cur:
                for name in ANCHOR_TABLES:
                    cur.execute(f"DROP TABLE IF EXISTS anchor.{name}")
                    cur.execute(
                        f"CREATE TABLE anchor.{name} (LIKE redemption_tracker.{name} INCLUDING ALL)"
                    )
            conn.commit()
            started = time.perf_counter()
            for chunk in range(batches):
                with conn.cursor() as cur:
                    for name, (columns, chunks) in tables.items():
                        if chunk >= len(chunks):
                            continue
                        cols = ", ".join(columns)
                        with cur.copy(f"COPY anchor.{name} ({cols}) FROM STDIN") as copy:
                            for row in chunks[chunk]:
                                copy.write_row(row)
                conn.commit()
            passes.append((time.perf_counter() - started) / batches)
        return statistics.median(passes)
    finally:
        raw.close()


def run(tracker: Tracker, args: argparse.Namespace) -> None:
    with unit_of_work(tracker.sessions) as s:
        key = create_key(s, tracker.secret, "pos", "BENCH")
    app = create_app(tracker=tracker)
    # Rate limits stay in the request path, on Redis when REDIS_URL is set (their cost is
    # measured), but out of reach: one bench client is far faster than any store.
    out_of_reach = {f"TENIN_RATE_LIMIT_{b}": "1000000/1000000" for b in ("KEY_POS", "STORE")}
    limiter = rate_limiter(os.environ.get("REDIS_URL"), f"bench-{uuid.uuid4().hex[:8]}")
    install_rate_limits(app, limiter, Limits.from_env(out_of_reach))
    tune_gc()  # as `tenin serve` does
    headers = {"Authorization": f"Bearer {key}"}
    work = Workload(tracker, args.coupon_share, args.member_share)

    def measure(
        size: int, count: int, warmup: int, threads: int = 1
    ) -> tuple[list[float], float, float]:
        """Latencies, wall seconds and process CPU seconds of `count` requests."""
        # Bodies are encoded before the clock starts: a till's JSON encoding is not ours.
        bodies = [
            json.dumps(
                {"store_id": "BENCH", "transactions": [work.transaction() for _ in range(size)]}
            ).encode()
            for _ in range(count + warmup)
        ]

        def send(body: bytes) -> float:
            t0 = time.perf_counter()
            r = app.test_client().post(
                "/v1/pos/transactions", data=body, headers=headers, content_type="application/json"
            )
            elapsed = time.perf_counter() - t0
            assert r.status_code == 200, r.get_data(as_text=True)[:500]
            assert r.get_data().count(b'"accepted"') == size
            return elapsed

        for body in bodies[:warmup]:
            send(body)
        started, cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(threads) as pool:
            latencies = list(pool.map(send, bodies[warmup:]))
        return latencies, time.perf_counter() - started, time.process_time() - cpu

    n = args.batch_size * args.batches
    anchored = args.threads[0]
    lat, elapsed, cpu = measure(args.batch_size, args.batches, 0, anchored)
    copy_s = raw_copy_seconds(tracker, args.batches)  # a fresh database: only those rows
    print(
        f"batches of {args.batch_size}, {anchored} request thread(s), side by side "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):\n"
        f"  ingest through the app: {n / elapsed:,.0f} transactions/s "
        f"(per batch median {statistics.median(lat) * 1000:.0f} ms, "
        f"process CPU {cpu / args.batches * 1000:.0f} ms)\n"
        f"  raw COPY of the same rows: {args.batch_size / copy_s:,.0f} transactions/s "
        f"(per batch {copy_s * 1000:.0f} ms, median of 3 passes)\n"
        f"  ratio: {copy_s * args.batches / elapsed:.0%} of raw COPY (goal >= 25%)"
    )
    print(
        f"batches of {args.batch_size} ({args.coupon_share:.0%} with a coupon, "
        f"{args.member_share:.0%} with a member id), one process, PostgreSQL; "
        f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    for threads in args.threads:
        lat, elapsed, cpu = measure(args.batch_size, args.batches, 2, threads)
        print(
            f"  {threads} request thread(s): {n / elapsed:,.0f} transactions/s   "
            f"per batch p50 {statistics.median(lat) * 1000:.0f} ms, "
            f"p99 {percentile(lat, 99) * 1000:.0f} ms   "
            f"(process CPU {cpu / args.batches * 1000:.0f} ms per batch)"
        )
    print(f"one-transaction requests, {args.singles} requests:")
    for threads in args.threads:
        lat1, elapsed1, cpu1 = measure(1, args.singles, 20, threads)
        print(
            f"  {threads} request thread(s): {args.singles / elapsed1:,.0f} requests/s   "
            f"per request p50 {statistics.median(lat1) * 1000:.1f} ms, "
            f"p99 {percentile(lat1, 99) * 1000:.1f} ms   "
            f"(process CPU {cpu1 / args.singles * 1000:.1f} ms per request)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=1000)
    parser.add_argument("--coupon-share", type=float, default=0.10)
    parser.add_argument("--member-share", type=float, default=0.30)
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, 4],
        help="request threads in the one process (gunicorn's gthread model)",
    )
    parser.add_argument(
        "--database-url", default=None, help="an already migrated database (default: a scratch one)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="10 batches, 200 single requests, one thread"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.singles, args.threads = 10, 200, [1]
    server = os.environ.get("DATABASE_URL") or ""
    if not (args.database_url or server):
        print('set DATABASE_URL (eval "$(scripts/services up)")', file=sys.stderr)
        return 2
    url = args.database_url or create_database(server)
    try:
        if not args.database_url:
            migrate(url)
        tracker = bootstrap(Settings(database_url=url, secret_key="bench-" + uuid.uuid4().hex))
        logging.getLogger().setLevel(logging.WARNING)
        run(tracker, args)
        tracker.engine.dispose()
    finally:
        if not args.database_url:
            drop_database(server, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
